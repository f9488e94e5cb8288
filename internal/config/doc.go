// Package config reads posd's YAML file: defaults first (Default), then a
// strict decode in which an unknown key is an error, then Validate, which
// lists every problem at once, each with the key it is about, so that an
// installer fixes a file in one pass. It is the one package that knows the
// file's shape: the daemon builds plain option structs from a Config for
// the components, which never see it.
//
// Secrets are files, never values in the YAML. The merchant key and the API
// token are read from key_file and token_file (systemd credentials
// included) by ReadSecret, which refuses a file that others can read or
// write, that belongs to neither root nor posd's user, or that is not a
// regular file, and error messages and logs show URLs without their
// credentials (RedactURLs).
//
// The scanner and display types are not listed here. Each kind registers
// its checks and label (RegisterScanner, RegisterDisplay) from the package
// that builds it, so a type cannot be valid in the file and unknown to the
// daemon; Validate refuses a type no kind registered.
//
// A config says what posd may do, never what happened: reading one makes
// no gateway call and touches no journal or device, and a reload whose file
// has problems changes nothing.
package config
