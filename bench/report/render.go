package report

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"text/template"
)

// templateText holds every word of latest.md: the page, and for each
// metric a "label ID METRIC" (the table's metric column) and, if it has
// one, a "note ID METRIC" (its line under Notes). Both are executed with
// the row, read back from JSON, as dot: {{.Facts.g_s}} is a fact's value.
//
//go:embed template.md.tmpl
var templateText string

// Markdown renders the report as bench/results/latest.md, from what its
// latest.json holds. On an error the text is still whole: a label or note
// that failed says so in its place.
func (r Report) Markdown() (string, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("cannot encode results: %w", err)
	}
	return RenderJSON(data)
}

// RenderJSON renders latest.md from the content of latest.json.
func RenderJSON(data []byte) (string, error) {
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return "", fmt.Errorf("cannot read results: %w", err)
	}
	rd := newRenderer()
	var b strings.Builder
	if err := rd.t.ExecuteTemplate(&b, "report", r); err != nil {
		return b.String(), fmt.Errorf("cannot render latest.md: %w", err)
	}
	return b.String(), errors.Join(rd.errs...)
}

// HasLabel reports whether the template has a label for the metric of
// benchmark id.
func HasLabel(id, metric string) bool {
	return newRenderer().t.Lookup(labelName(id, metric)) != nil
}

func labelName(id, metric string) string { return "label " + id + " " + metric }
func noteName(id, metric string) string  { return "note " + id + " " + metric }

// renderer is the template of one rendering and the errors of its labels
// and notes.
type renderer struct {
	t    *template.Template
	errs []error
}

func newRenderer() *renderer {
	rd := &renderer{}
	rd.t = template.Must(template.New("latest.md").Option("missingkey=error").Funcs(template.FuncMap{
		"num":    num,
		"exact":  exact,
		"nums":   nums,
		"exacts": exacts,
		"pluck":  pluck,
		"deref":  func(b *bool) bool { return b != nil && *b },
		"label":  rd.label,
		"notes":  rd.notes,
	}).Parse(templateText))
	return rd
}

// label is the row's metric as the table shows it: its label, or the
// metric itself if the template has none.
func (rd *renderer) label(row Row) string {
	text, ok := rd.exec(labelName(row.ID, row.Metric), row)
	if !ok {
		return row.Metric
	}
	return text
}

// noteLine is one line under Notes.
type noteLine struct {
	Row         Row
	Label, Text string
}

// notes are the lines under Notes: each row's note (from the template)
// or why it was not measured.
func (rd *renderer) notes(rows []Row) []noteLine {
	var out []noteLine
	for _, row := range rows {
		if row.NotMeasured != "" {
			out = append(out, noteLine{Row: row, Label: row.Metric, Text: "not measured: " + row.NotMeasured})
			continue
		}
		if text, ok := rd.exec(noteName(row.ID, row.Metric), row); ok && text != "" {
			out = append(out, noteLine{Row: row, Label: rd.label(row), Text: text})
		}
	}
	return out
}

// exec runs the named template on row, if there is one; a failure is
// recorded and said in the text.
func (rd *renderer) exec(name string, row Row) (string, bool) {
	if rd.t.Lookup(name) == nil {
		return "", false
	}
	var b strings.Builder
	if err := rd.t.ExecuteTemplate(&b, name, row); err != nil {
		rd.errs = append(rd.errs, err)
		return fmt.Sprintf("(%s: not rendered: %v)", name, err), true
	}
	return strings.TrimSpace(b.String()), true
}

// num formats a measured figure as Num does; nil (a figure not there)
// is "".
func num(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case *float64:
		if x == nil {
			return ""
		}
		return Num(*x)
	case float64:
		return Num(x)
	}
	return fmt.Sprint(v)
}

// exact formats a count or a set figure with all its digits and no
// exponent: 10000, 1.75, 0.5.
func exact(v any) string {
	if x, ok := v.(float64); ok {
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// nums formats each item of a list with num ("–" for a figure not there)
// and joins them with ", "; exacts does the same with exact.
func nums(list any) (string, error)   { return joinWith(list, num) }
func exacts(list any) (string, error) { return joinWith(list, exact) }

func joinWith(list any, format func(any) string) (string, error) {
	v := reflect.ValueOf(list)
	if v.Kind() != reflect.Slice {
		return "", fmt.Errorf("a list of %T", list)
	}
	parts := make([]string, v.Len())
	for i := range parts {
		item := v.Index(i).Interface()
		if parts[i] = format(item); item == nil {
			parts[i] = "–"
		}
	}
	return strings.Join(parts, ", "), nil
}

// pluck is the value of key in each object of a list.
func pluck(key string, list []any) ([]any, error) {
	out := make([]any, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("pluck %q: item %d is %T, not an object", key, i, item)
		}
		if out[i], ok = m[key]; !ok {
			return nil, fmt.Errorf("pluck %q: item %d has no such key", key, i)
		}
	}
	return out, nil
}

// Num formats a figure with about three significant digits, without an
// exponent: 0.0123, 1.23, 12.3, 1234.
func Num(x float64) string {
	ax := x
	if ax < 0 {
		ax = -ax
	}
	switch {
	case ax == 0:
		return "0"
	case ax >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case ax >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	case ax >= 1:
		return strconv.FormatFloat(x, 'f', 2, 64)
	case ax >= 0.01:
		return strconv.FormatFloat(x, 'f', 3, 64)
	default:
		return strconv.FormatFloat(x, 'g', 3, 64)
	}
}
