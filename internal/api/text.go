package api

import (
	"unicode/utf8"

	"example.com/posd/internal/lane"
)

// checkText refuses a till's text with a control character (C0, DEL, C1)
// or invalid UTF-8 (or U+FFFD, what JSON makes of it), naming the field. These fields reach the journal, the
// exports, the logs, the receipt printer and head office: a NUL ends a
// string early in C tools, an ESC is a command to a terminal or a printer.
// fields are pairs of name and value.
func checkText(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if !cleanText(fields[i+1]) {
			return lane.Invalid(fields[i], "%s: control characters and invalid UTF-8 are refused", fields[i])
		}
	}
	return nil
}

func cleanText(s string) bool {
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		// U+FFFD too: JSON decoding turns invalid UTF-8 into it.
		if r == utf8.RuneError || r < 0x20 || r >= 0x7f && r <= 0x9f {
			return false
		}
		s = s[n:]
	}
	return true
}
