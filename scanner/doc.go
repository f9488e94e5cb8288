// Package scanner turns devices into payment codes. A Source reads one
// device and emits each code it reads; a Router checks a code and names its
// wallet and pay_type; a Dedup window makes a code scanned twice one scan.
// Nothing here talks to the gateway.
package scanner
