// Package display shows what happens at a lane. A lane publishes Events to
// a Hub; every display subscribes with its own bounded queue, so that a
// slow or broken display loses stale frames and never delays a payment.
package display
