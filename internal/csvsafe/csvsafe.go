// Package csvsafe writes CSV a spreadsheet opens as text: a cell that
// begins with = + - @ TAB or CR would be read as a formula (and run, with
// DDE or HYPERLINK) by Excel, LibreOffice or Google Sheets, so it is
// written behind a ' (OWASP, "CSV Injection"). The values come from a
// till, a gateway and the boxes of a fleet: none of them is trusted to
// write formulas into head office's spreadsheets.
package csvsafe

import (
	"encoding/csv"
	"io"
)

// Cell returns s as a spreadsheet reads it as text.
func Cell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// Writer is a csv.Writer whose cells pass through Cell.
type Writer struct {
	*csv.Writer
	row []string
}

// NewWriter writes CSV to w.
func NewWriter(w io.Writer) *Writer { return &Writer{Writer: csv.NewWriter(w)} }

// Write writes one row.
func (w *Writer) Write(row []string) error {
	w.row = w.row[:0]
	for _, s := range row {
		w.row = append(w.row, Cell(s))
	}
	return w.Writer.Write(w.row)
}

// WriteAll writes rows and flushes.
func (w *Writer) WriteAll(rows [][]string) error {
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}
