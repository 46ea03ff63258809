package charm

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// JSON Schema types an action parameter may have.
const (
	TypeJSONString  = "string"
	TypeJSONInteger = "integer"
	TypeJSONNumber  = "number"
	TypeJSONBoolean = "boolean"
	TypeJSONArray   = "array"
	TypeJSONObject  = "object"
	TypeJSONNull    = "null"
)

var jsonTypes = []string{TypeJSONString, TypeJSONInteger, TypeJSONNumber, TypeJSONBoolean,
	TypeJSONArray, TypeJSONObject, TypeJSONNull}

// prohibitedSchemaKeys are refused anywhere in a schema, as Juju refuses
// them: a schema must be self-contained.
var prohibitedSchemaKeys = []string{"$ref", "$schema"}

// Schema is a compiled JSON Schema of the subset actions use (Juju
// validates action parameters with JSON Schema draft 4): type (one or a
// list), enum, default, minimum and maximum (with draft 4's boolean
// exclusiveMinimum/exclusiveMaximum or draft 6's numeric ones),
// minLength, maxLength, pattern, properties, required,
// additionalProperties (a boolean or a schema; absent means allowed),
// items (one schema, or a list for tuples), minItems and maxItems.
// Annotations (description, title, examples, ...) are ignored, and so are
// the keywords outside the subset (oneOf, anyOf, allOf, not, format,
// const, multipleOf, uniqueItems, patternProperties, dependencies): a
// charm that uses them still loads, and its own code must check what they
// would have. A Schema is immutable and safe for concurrent use.
type Schema struct {
	types      []string
	enum       []any
	hasDefault bool
	def        any

	minimum, maximum       *big.Rat
	exclusiveMinimum       bool // minimum itself is excluded
	exclusiveMaximum       bool
	minLength, maxLength   int // -1: unset
	minItems, maxItems     int
	pattern                *regexp.Regexp
	properties             map[string]*Schema
	required               []string
	additionalAllowed      bool
	additional             *Schema // nil: additionalAllowed decides
	items                  *Schema
	tupleItems             []*Schema
	patternText, typesText string
}

// CompileSchema compiles a JSON Schema document: a JSON object as decoded
// by encoding/json (numbers as float64 or json.Number) or by YAML (int,
// float64). An unknown type, a keyword of the wrong shape, a bad pattern
// and $ref or $schema anywhere are errors naming the keyword.
func CompileSchema(doc any) (*Schema, error) {
	m, ok := asObject(doc)
	if !ok {
		return nil, fmt.Errorf("schema is %s, not an object", typeName(doc))
	}
	return compile(m, "")
}

func compile(m map[string]any, path string) (*Schema, error) {
	s := &Schema{minLength: -1, maxLength: -1, minItems: -1, maxItems: -1, additionalAllowed: true}
	for _, key := range prohibitedSchemaKeys {
		if _, ok := m[key]; ok {
			return nil, fmt.Errorf("%sschema key %q is not supported", at(path), key)
		}
	}
	steps := []func(map[string]any, string) error{
		s.compileType, s.compileEnum, s.compileNumbers, s.compileStrings,
		s.compileObject, s.compileArray,
	}
	for _, step := range steps {
		if err := step(m, path); err != nil {
			return nil, err
		}
	}
	s.def, s.hasDefault = m["default"]
	return s, nil
}

// at prefixes an error about a nested schema with where it is.
func at(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

func (s *Schema) compileType(m map[string]any, path string) error {
	raw, ok := m["type"]
	if !ok {
		return nil
	}
	switch t := raw.(type) {
	case string:
		s.types = []string{t}
	case []any:
		for _, v := range t {
			name, ok := v.(string)
			if !ok {
				return fmt.Errorf(`%s"type" must be a string or a list of strings`, at(path))
			}
			s.types = append(s.types, name)
		}
	default:
		return fmt.Errorf(`%s"type" must be a string or a list of strings`, at(path))
	}
	for _, t := range s.types {
		if !slices.Contains(jsonTypes, t) {
			return fmt.Errorf("%sunknown type %q (expected one of %s)", at(path), t, strings.Join(jsonTypes, ", "))
		}
	}
	s.typesText = strings.Join(s.types, "/")
	return nil
}

func (s *Schema) compileEnum(m map[string]any, path string) error {
	raw, ok := m["enum"]
	if !ok {
		return nil
	}
	list, ok := raw.([]any)
	if !ok || len(list) == 0 {
		return fmt.Errorf(`%s"enum" must be a non-empty list`, at(path))
	}
	s.enum = list
	return nil
}

func (s *Schema) compileNumbers(m map[string]any, path string) error {
	for _, b := range []struct {
		key       string
		bound     **big.Rat
		exclusive *bool
		exKey     string
	}{
		{"minimum", &s.minimum, &s.exclusiveMinimum, "exclusiveMinimum"},
		{"maximum", &s.maximum, &s.exclusiveMaximum, "exclusiveMaximum"},
	} {
		if raw, ok := m[b.key]; ok {
			r, ok := asRat(raw)
			if !ok {
				return fmt.Errorf("%s%q must be a number", at(path), b.key)
			}
			*b.bound = r
		}
		switch ex := m[b.exKey].(type) {
		case nil:
		case bool: // draft 4: a modifier of minimum/maximum
			*b.exclusive = ex
		default: // draft 6: a bound of its own
			r, ok := asRat(ex)
			if !ok {
				return fmt.Errorf("%s%q must be a boolean or a number", at(path), b.exKey)
			}
			if *b.bound == nil || tighter(r, *b.bound, b.key == "minimum") {
				*b.bound, *b.exclusive = r, true
			}
		}
	}
	return nil
}

// tighter reports whether exclusive bound r is at least as tight as the
// inclusive bound cur.
func tighter(r, cur *big.Rat, lower bool) bool {
	if lower {
		return r.Cmp(cur) >= 0
	}
	return r.Cmp(cur) <= 0
}

func (s *Schema) compileStrings(m map[string]any, path string) error {
	for key, dst := range map[string]*int{"minLength": &s.minLength, "maxLength": &s.maxLength,
		"minItems": &s.minItems, "maxItems": &s.maxItems} {
		raw, ok := m[key]
		if !ok {
			continue
		}
		n, ok := asCount(raw)
		if !ok {
			return fmt.Errorf("%s%q must be a non-negative integer", at(path), key)
		}
		*dst = n
	}
	if raw, ok := m["pattern"]; ok {
		p, ok := raw.(string)
		if !ok {
			return fmt.Errorf(`%s"pattern" must be a string`, at(path))
		}
		re, err := regexp.Compile(p)
		if err != nil {
			return fmt.Errorf("%sbad pattern %q: %v", at(path), p, err)
		}
		s.pattern, s.patternText = re, p
	}
	return nil
}

func (s *Schema) compileObject(m map[string]any, path string) error {
	if raw, ok := m["properties"]; ok {
		props, ok := asObject(raw)
		if !ok {
			return fmt.Errorf(`%s"properties" must be a map`, at(path))
		}
		s.properties = make(map[string]*Schema, len(props))
		for _, name := range slices.Sorted(maps.Keys(props)) {
			pm, ok := asObject(props[name])
			if !ok {
				return fmt.Errorf("%sproperty %q must be a map", at(path), name)
			}
			sub, err := compile(pm, join(path, name))
			if err != nil {
				return err
			}
			s.properties[name] = sub
		}
	}
	if raw, ok := m["required"]; ok {
		list, ok := raw.([]any)
		if !ok {
			return fmt.Errorf(`%s"required" must be a list of strings`, at(path))
		}
		for _, v := range list {
			name, ok := v.(string)
			if !ok {
				return fmt.Errorf(`%s"required" must be a list of strings`, at(path))
			}
			s.required = append(s.required, name)
		}
	}
	switch a := m["additionalProperties"].(type) {
	case nil:
	case bool:
		s.additionalAllowed = a
	default:
		am, ok := asObject(a)
		if !ok {
			return fmt.Errorf(`%s"additionalProperties" must be a boolean or a map`, at(path))
		}
		sub, err := compile(am, join(path, "additionalProperties"))
		if err != nil {
			return err
		}
		s.additional = sub
	}
	return nil
}

func (s *Schema) compileArray(m map[string]any, path string) error {
	raw, ok := m["items"]
	if !ok {
		return nil
	}
	if list, ok := raw.([]any); ok {
		for i, v := range list {
			im, ok := asObject(v)
			if !ok {
				return fmt.Errorf(`%s"items" must be a map or a list of maps`, at(path))
			}
			sub, err := compile(im, join(path, strconv.Itoa(i)))
			if err != nil {
				return err
			}
			s.tupleItems = append(s.tupleItems, sub)
		}
		return nil
	}
	im, ok := asObject(raw)
	if !ok {
		return fmt.Errorf(`%s"items" must be a map or a list of maps`, at(path))
	}
	sub, err := compile(im, join(path, "items"))
	if err != nil {
		return err
	}
	s.items = sub
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// Validate checks params (a JSON object as decoded by encoding/json,
// preferably with UseNumber, or as parsed from YAML) against the schema.
// All violations are reported, sorted by where they are, in the form
// Juju's validator gives: `validation failed: (root).n : invalid type.
// Expected: integer, given: string; (root) : "name" property is missing
// and required, given {}`. nil params are validated as {}.
func (s *Schema) Validate(params map[string]any) error {
	if params == nil {
		params = map[string]any{}
	}
	var errs []string
	s.check(params, "(root)", &errs)
	if len(errs) > 0 {
		return fmt.Errorf("validation failed: %s", strings.Join(errs, "; "))
	}
	return nil
}

func (s *Schema) check(v any, path string, errs *[]string) {
	fail := func(format string, args ...any) {
		*errs = append(*errs, path+" : "+fmt.Sprintf(format, args...))
	}
	given := typeName(v)
	if len(s.types) > 0 && !s.typeOK(given) {
		fail("invalid type. Expected: %s, given: %s", s.typesText, given)
		return
	}
	if s.enum != nil && !slices.ContainsFunc(s.enum, func(e any) bool { return equalJSON(e, v) }) {
		allowed := make([]string, len(s.enum))
		for i, e := range s.enum {
			allowed[i] = compactJSON(e)
		}
		fail("must be one of the following: %s, given %s", strings.Join(allowed, ", "), compactJSON(v))
	}
	switch given {
	case TypeJSONInteger, TypeJSONNumber:
		s.checkNumber(v, fail)
	case TypeJSONString:
		s.checkString(v.(string), fail)
	case TypeJSONArray:
		s.checkArray(v.([]any), path, fail, errs)
	case TypeJSONObject:
		m, _ := asObject(v)
		s.checkObject(m, path, fail, errs)
	}
}

func (s *Schema) typeOK(given string) bool {
	return slices.Contains(s.types, given) || (given == TypeJSONInteger && slices.Contains(s.types, TypeJSONNumber))
}

func (s *Schema) checkNumber(v any, fail func(string, ...any)) {
	r, _ := asRat(v)
	if s.minimum != nil {
		if c := r.Cmp(s.minimum); c < 0 || (c == 0 && s.exclusiveMinimum) {
			fail("must be greater than %s%s, given %s", orEqual(!s.exclusiveMinimum), ratText(s.minimum), compactJSON(v))
		}
	}
	if s.maximum != nil {
		if c := r.Cmp(s.maximum); c > 0 || (c == 0 && s.exclusiveMaximum) {
			fail("must be less than %s%s, given %s", orEqual(!s.exclusiveMaximum), ratText(s.maximum), compactJSON(v))
		}
	}
}

func orEqual(inclusive bool) string {
	if inclusive {
		return "or equal to "
	}
	return ""
}

func (s *Schema) checkString(v string, fail func(string, ...any)) {
	n := len([]rune(v))
	if s.minLength >= 0 && n < s.minLength {
		fail("string length must be greater than or equal to %d, given %q", s.minLength, v)
	}
	if s.maxLength >= 0 && n > s.maxLength {
		fail("string length must be less than or equal to %d, given %q", s.maxLength, v)
	}
	if s.pattern != nil && !s.pattern.MatchString(v) {
		fail("does not match pattern %q, given %q", s.patternText, v)
	}
}

func (s *Schema) checkArray(v []any, path string, fail func(string, ...any), errs *[]string) {
	if s.minItems >= 0 && len(v) < s.minItems {
		fail("array must have at least %d items, given %d", s.minItems, len(v))
	}
	if s.maxItems >= 0 && len(v) > s.maxItems {
		fail("array must have at most %d items, given %d", s.maxItems, len(v))
	}
	for i, item := range v {
		switch {
		case i < len(s.tupleItems):
			s.tupleItems[i].check(item, path+"."+strconv.Itoa(i), errs)
		case s.items != nil:
			s.items.check(item, path+"."+strconv.Itoa(i), errs)
		}
	}
}

func (s *Schema) checkObject(m map[string]any, path string, fail func(string, ...any), errs *[]string) {
	for _, name := range s.required {
		if _, ok := m[name]; !ok {
			fail("%q property is missing and required, given %s", name, compactJSON(m))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		sub, known := s.properties[name]
		switch {
		case known:
		case s.additional != nil:
			sub = s.additional
		case !s.additionalAllowed:
			fail("additional property %q is not allowed, given %s", name, compactJSON(m))
			continue
		default:
			continue
		}
		sub.check(m[name], path+"."+name, errs)
	}
}

// InsertDefaults returns a copy of params with the default of every
// property that params lacks, recursing into the objects params has (as
// Juju does before it enqueues an action). The defaults themselves are
// not validated, as Juju does not validate them.
func (s *Schema) InsertDefaults(params map[string]any) map[string]any {
	out := make(map[string]any, len(params)+len(s.properties))
	maps.Copy(out, params)
	for name, sub := range s.properties {
		v, ok := out[name]
		switch {
		case !ok && sub.hasDefault:
			out[name] = deepCopy(sub.def)
		case ok:
			if m, isMap := asObject(v); isMap && sub.properties != nil {
				out[name] = sub.InsertDefaults(m)
			}
		}
	}
	return out
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// typeName is the JSON Schema type of a decoded value: a number is an
// integer when it has no fractional part.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return TypeJSONNull
	case string:
		return TypeJSONString
	case bool:
		return TypeJSONBoolean
	case []any:
		return TypeJSONArray
	case map[string]any, map[any]any:
		return TypeJSONObject
	}
	if r, ok := asRat(v); ok {
		if r.IsInt() {
			return TypeJSONInteger
		}
		return TypeJSONNumber
	}
	return fmt.Sprintf("%T", v)
}

// asObject returns v as a string-keyed map (YAML may give map[any]any).
func asObject(v any) (map[string]any, bool) {
	switch x := v.(type) {
	case map[string]any:
		return x, true
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ks, ok := k.(string)
			if !ok {
				return nil, false
			}
			out[ks] = e
		}
		return out, true
	}
	return nil, false
}

// asRat returns a decoded number exactly.
func asRat(v any) (*big.Rat, bool) {
	switch x := v.(type) {
	case json.Number:
		return new(big.Rat).SetString(string(x))
	case float64:
		if r := new(big.Rat); r.SetFloat64(x) != nil {
			return r, true
		}
	case float32:
		return asRat(float64(x))
	case int:
		return new(big.Rat).SetInt64(int64(x)), true
	case int64:
		return new(big.Rat).SetInt64(x), true
	case int32:
		return new(big.Rat).SetInt64(int64(x)), true
	case uint64:
		return new(big.Rat).SetUint64(x), true
	case uint:
		return new(big.Rat).SetUint64(uint64(x)), true
	}
	return nil, false
}

// asCount returns a non-negative integer keyword value.
func asCount(v any) (int, bool) {
	r, ok := asRat(v)
	if !ok || !r.IsInt() || r.Sign() < 0 || !r.Num().IsInt64() || r.Num().Int64() > 1<<31 {
		return 0, false
	}
	return int(r.Num().Int64()), true
}

func ratText(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// equalJSON compares two decoded values as JSON does: numbers by value.
func equalJSON(a, b any) bool {
	ra, aNum := asRat(a)
	rb, bNum := asRat(b)
	if aNum || bNum {
		return aNum && bNum && ra.Cmp(rb) == 0
	}
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		return ok && slices.EqualFunc(x, y, equalJSON)
	case map[string]any, map[any]any:
		mx, _ := asObject(x)
		my, ok := asObject(b)
		return ok && maps.EqualFunc(mx, my, equalJSON)
	}
	return a == b
}

// compactJSON is v as compact JSON, for messages.
func compactJSON(v any) string {
	if m, ok := v.(map[any]any); ok {
		v, _ = asObject(m)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}
