package loader

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// CSV reads a campaign file: a header row naming the columns "target", optionally
// "msgKey", and one column per template variable (any other name, UTF-8 included),
// then one row per target. A UTF-8 byte order mark, CRLF line ends and quoted
// fields (with commas, quotes or line breaks inside) are read as a spreadsheet
// writes them.
type CSV struct {
	r      *csv.Reader
	target int
	msgKey int // -1 when absent
	vars   []string
	varCol []int
}

// NewCSV reads the header.
func NewCSV(r io.Reader) (*CSV, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("reading the header row: %w", err)
	}
	c := &CSV{r: cr, target: -1, msgKey: -1}
	seen := map[string]bool{}
	for i, name := range header {
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff")
		}
		name = strings.TrimSpace(name)
		switch {
		case name == "":
			return nil, fmt.Errorf("header column %d has no name", i+1)
		case seen[name]:
			return nil, fmt.Errorf("header names %q twice", name)
		case strings.EqualFold(name, "target"):
			c.target = i
		case strings.EqualFold(name, "msgKey"):
			c.msgKey = i
		default:
			c.vars = append(c.vars, name)
			c.varCol = append(c.varCol, i)
		}
		seen[name] = true
	}
	if c.target < 0 {
		return nil, errors.New(`the header has no "target" column`)
	}
	cr.FieldsPerRecord = len(header)
	return c, nil
}

// Vars are the template variables, in column order.
func (c *CSV) Vars() []string { return c.vars }

// Next reads the next row. A bad row is a *RowError (the caller rejects it and
// goes on); io.EOF ends the file.
func (c *CSV) Next() (Row, error) {
	rec, err := c.r.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return Row{}, &RowError{Line: pe.StartLine, Reason: pe.Err.Error()}
		}
		return Row{}, err
	}
	line, _ := c.r.FieldPos(0)
	r := Row{Line: line, Target: strings.TrimSpace(rec[c.target])}
	if r.Target == "" {
		return Row{}, &RowError{Line: line, Reason: "target is empty"}
	}
	if c.msgKey >= 0 {
		r.MsgKey = strings.TrimSpace(rec[c.msgKey])
	}
	r.Values = make([]string, len(c.varCol))
	for i, col := range c.varCol {
		r.Values[i] = rec[col] // ReuseRecord: strings are fresh, the slice is not
	}
	return r, nil
}

// RowError is a row that cannot be loaded.
type RowError struct {
	Line   int
	Reason string
}

func (e *RowError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }
