package v1alpha1

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v2"
	sigsjson "sigs.k8s.io/json"
)

// Decode reads one Cluster document, YAML or JSON, strictly: unknown or
// misspelt fields, fields set twice and values of the wrong type are all
// errors naming the field's full path, and all of them are reported at once
// as an *InvalidSpecError. Invalid YAML is reported with its line. Decode
// neither defaults nor validates; Load does all three.
//
// An empty list or map decodes the same as an absent one, so that a spec
// reads the same after being written back out.
func Decode(data []byte) (*Cluster, error) {
	r := decode(data)
	if err := r.errs.err(); err != nil {
		return nil, err
	}
	return r.cluster, nil
}

// decoded is what decode makes of a document, good or bad, so that Load can
// go on to validate what did decode and report every problem in one pass.
type decoded struct {
	// cluster holds every field that decoded; nil when the document could not
	// be read at all (not YAML, empty, not a mapping).
	cluster *Cluster
	errs    errorList
	// shadowed are fields whose written value was dropped or is likely
	// misspelt elsewhere; a validation error about them would only repeat, less
	// helpfully, the decode error already reported.
	shadowed []string
}

func decode(data []byte) decoded {
	var r decoded
	root, problem := parseDocument(data)
	if problem != nil {
		r.errs = append(r.errs, *problem)
		return r
	}

	// The walk checks the YAML against the Go types itself rather than
	// leaving it to encoding/json, which stops at the first mismatch and
	// names it without list indices.
	w := walker{}
	tree, _ := w.value("", reflect.TypeFor[Cluster](), root)
	r.errs, r.shadowed = w.errs, w.shadowed

	raw, err := json.Marshal(tree)
	if err != nil {
		// The walk emits only what encoding/json can write; reaching this is a
		// bug in the walk, not in the spec.
		r.errs.add("", fmt.Sprintf("internal error converting the spec to JSON: %v", err))
		return r
	}
	c := &Cluster{}
	// UnmarshalStrict is a second line of defence: the walk should already
	// have reported every unknown or duplicate field.
	strict, err := sigsjson.UnmarshalStrict(raw, c)
	if err != nil {
		r.errs.add("", fmt.Sprintf("internal error decoding the spec: %v", err))
		return r
	}
	for _, se := range strict {
		field := se.Error()
		var fe sigsjson.FieldError
		if errors.As(se, &fe) {
			field = fe.FieldPath()
		}
		r.errs.add(field, "unknown or duplicate field")
	}
	r.cluster = c
	return r
}

// parseDocument parses data as a single YAML (or JSON) mapping. It keeps keys
// in order and keeps keys written twice, which a Go map would silently merge.
func parseDocument(data []byte) (yaml.MapSlice, *FieldError) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc document
	err := dec.Decode(&doc)
	switch {
	case errors.Is(err, io.EOF):
		return nil, emptyDocument()
	case err != nil:
		return nil, syntaxError(err)
	case doc.other != nil:
		return nil, &FieldError{Detail: fmt.Sprintf("the document is %s: a cluster spec is a mapping with apiVersion, kind, metadata and spec", describe(doc.other))}
	case len(doc.root) == 0:
		return nil, emptyDocument()
	}
	root := doc.root

	for {
		var extra any
		err := dec.Decode(&extra)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, syntaxError(err)
		}
		// A trailing "---" with nothing after it is harmless.
		if extra != nil {
			return nil, &FieldError{Detail: "the file holds more than one YAML document: a cluster spec is a single document; remove everything from the second --- on"}
		}
	}

	if hasMergeKeys(data, root) {
		return nil, &FieldError{Detail: "YAML merge keys (<<) are not supported: write the merged fields out in full"}
	}
	return root, nil
}

// document is the root of a spec. Decoded straight into a MapSlice, yaml.v2
// would read a list as a MapSlice of empty items, so the root is first tried
// as a list, which fails at once on a mapping.
type document struct {
	root yaml.MapSlice
	// other is the document when it is not a mapping.
	other any
}

func (d *document) UnmarshalYAML(unmarshal func(any) error) error {
	var list []any
	err := unmarshal(&list)
	var typeErr *yaml.TypeError
	switch {
	case err == nil && list != nil:
		d.other = list
		return nil
	case err != nil && !errors.As(err, &typeErr):
		// A list that is not even valid as a list, e.g. with a list as a key.
		return err
	}
	if err := unmarshal(&d.root); err != nil {
		d.root = nil
		// A scalar: keep it to say what it is.
		return unmarshal(&d.other)
	}
	return nil
}

func emptyDocument() *FieldError {
	return &FieldError{Detail: fmt.Sprintf("the document is empty: write a cluster spec with apiVersion: %s, kind: %s, metadata.name and spec.provider", APIVersion, KindCluster)}
}

func syntaxError(err error) *FieldError {
	// yaml.v2 says where ("line 3: ..."); only its package prefix is noise.
	return &FieldError{Detail: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
}

// hasMergeKeys reports whether the document uses "<<" merge keys. yaml.v2
// drops merged keys when it decodes into a MapSlice, so rather than silently
// lose fields, Decode refuses them. A generic decode keeps merged keys, so it
// holds more keys than the MapSlice exactly when a merge added some.
func hasMergeKeys(data []byte, root yaml.MapSlice) bool {
	if !bytes.Contains(data, []byte("<<")) {
		return false
	}
	var generic any
	if err := yaml.Unmarshal(data, &generic); err != nil {
		// Only a non-scalar key makes this fail, and the walk reports such a
		// key wherever it is.
		return false
	}
	return countKeys(generic) != countKeys(root)
}

// countKeys counts distinct keys of every mapping in v. Keys are compared by
// their printed form, which is how the walk names them too.
func countKeys(v any) int {
	n := 0
	switch v := v.(type) {
	case yaml.MapSlice:
		seen := map[string]bool{}
		for _, item := range v {
			k := fmt.Sprint(item.Key)
			if !seen[k] {
				seen[k] = true
				n++
			}
			n += countKeys(item.Value)
		}
	case map[any]any:
		seen := map[string]bool{}
		for k, val := range v {
			ks := fmt.Sprint(k)
			if !seen[ks] {
				seen[ks] = true
				n++
			}
			n += countKeys(val)
		}
	case []any:
		for _, e := range v {
			n += countKeys(e)
		}
	}
	return n
}

// walker checks a parsed YAML tree against the Go type it must decode into.
type walker struct {
	errs     errorList
	shadowed []string
}

// value checks v against type t and returns it in the form encoding/json
// will decode into t. ok is false when v cannot be used: the mismatch is
// recorded and the caller drops the value, so that one mistake does not hide
// the rest of the document.
func (w *walker) value(path string, t reflect.Type, v any) (out any, ok bool) {
	if v == nil {
		// JSON null leaves the Go value at its zero, as kubectl does.
		return nil, true
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		// Duration and IntOrPercent accept anything and keep what they cannot
		// read for Validate, which can then say what a valid value looks like.
		return jsonable(v), true
	}
	switch t.Kind() {
	case reflect.Pointer:
		return w.value(path, t.Elem(), v)
	case reflect.Struct:
		m, isMap := v.(yaml.MapSlice)
		if !isMap {
			return w.mismatch(path, "must be a mapping of fields", "", v)
		}
		return w.object(path, t, m), true
	case reflect.Map:
		m, isMap := v.(yaml.MapSlice)
		if !isMap {
			return w.mismatch(path, "must be a mapping of keys to values", "", v)
		}
		return w.mapping(path, t, m), true
	case reflect.Slice:
		l, isList := v.([]any)
		if !isList {
			return w.mismatch(path, "must be a list", "", v)
		}
		if len(l) == 0 {
			return nil, true
		}
		items := make([]any, len(l))
		for i, e := range l {
			items[i], _ = w.value(index(path, i), t.Elem(), e)
		}
		return items, true
	case reflect.String:
		s, isString := v.(string)
		if !isString {
			return w.mismatch(path, "must be a string", "put the value in quotes", v)
		}
		return s, true
	case reflect.Bool:
		b, isBool := v.(bool)
		if !isBool {
			if s, isString := v.(string); isString && (s == "true" || s == "false") {
				return w.mismatch(path, "must be true or false", "remove the quotes", v)
			}
			return w.mismatch(path, "must be true or false", "", v)
		}
		return b, true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return w.integer(path, t, v)
	}
	// A kind the spec does not use; encoding/json judges it.
	return jsonable(v), true
}

func (w *walker) integer(path string, t reflect.Type, v any) (any, bool) {
	var n int64
	switch v := v.(type) {
	case int:
		n = int64(v)
	case int64:
		n = v
	case uint64:
		// Larger than any int64, so out of range for every signed field.
		return w.outOfRange(path, t, strconv.FormatUint(v, 10))
	case string:
		if _, err := strconv.ParseInt(v, 10, 64); err == nil {
			return w.mismatch(path, "must be a whole number", "remove the quotes", v)
		}
		return w.mismatch(path, "must be a whole number", "", v)
	default:
		return w.mismatch(path, "must be a whole number", "", v)
	}
	bits := t.Bits()
	lo, hi := int64(-1)<<(bits-1), int64(1)<<(bits-1)-1
	if bits == 64 {
		lo, hi = math.MinInt64, math.MaxInt64
	}
	if n < lo || n > hi {
		return w.outOfRange(path, t, strconv.FormatInt(n, 10))
	}
	return n, true
}

func (w *walker) outOfRange(path string, t reflect.Type, written string) (any, bool) {
	bits := t.Bits()
	w.errs.add(path, fmt.Sprintf("must be a whole number between %d and %d, not %s", int64(-1)<<(bits-1), int64(1)<<(bits-1)-1, written))
	w.shadowed = append(w.shadowed, path)
	return nil, false
}

// mismatch records that v is not what the field takes; hint, when given,
// says how to fix the common case.
func (w *walker) mismatch(path, want, hint string, v any) (any, bool) {
	detail := want + ", not " + describe(v)
	if hint != "" {
		detail += "; " + hint
	}
	w.errs.add(path, detail)
	w.shadowed = append(w.shadowed, path)
	return nil, false
}

// object checks a mapping against struct type t.
func (w *walker) object(path string, t reflect.Type, m yaml.MapSlice) map[string]any {
	fields := jsonFields(t)
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	out := make(map[string]any, len(m))
	seen := map[string]bool{}
	var suggested []string
	for _, item := range m {
		name, isString := item.Key.(string)
		if !isString {
			name = fmt.Sprint(item.Key)
		}
		p := child(path, name)
		f, known := lookupField(fields, name)
		if !known || !isString {
			if s := closest(name, names); s != "" {
				w.errs.add(p, fmt.Sprintf("unknown field; did you mean %q?", s))
				suggested = append(suggested, s)
			} else {
				w.errs.add(p, "unknown field; the fields allowed here are "+strings.Join(names, ", "))
			}
			continue
		}
		if seen[name] {
			w.errs.add(p, "duplicate field: it is set more than once; keep one")
			continue
		}
		seen[name] = true
		if val, ok := w.value(p, f.typ, item.Value); ok {
			out[name] = val
		}
	}
	// "nmae: x" most likely means name, so "name: required" would say the
	// same thing twice; but if name is also written, its problems are real.
	for _, s := range suggested {
		if !seen[s] {
			w.shadowed = append(w.shadowed, child(path, s))
		}
	}
	return out
}

// mapping checks a mapping against map type t (labels).
func (w *walker) mapping(path string, t reflect.Type, m yaml.MapSlice) any {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]any, len(m))
	seen := map[string]bool{}
	for _, item := range m {
		k, isString := item.Key.(string)
		if !isString {
			w.mismatch(key(path, fmt.Sprint(item.Key)), "must be a string key", "put the key in quotes", item.Key)
			continue
		}
		p := key(path, k)
		if seen[k] {
			w.errs.add(p, "duplicate key: it is set more than once; keep one")
			continue
		}
		seen[k] = true
		if val, ok := w.value(p, t.Elem(), item.Value); ok {
			out[k] = val
		}
	}
	return out
}

type jsonField struct {
	name string
	typ  reflect.Type
}

// jsonFields lists the fields encoding/json reads for struct type t, in
// declaration order, which is the order the messages list them in.
func jsonFields(t reflect.Type) []jsonField {
	var fields []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
			// encoding/json promotes an untagged embedded struct's fields.
			fields = append(fields, jsonFields(f.Type)...)
			continue
		}
		if name := jsonName(f); name != "" {
			fields = append(fields, jsonField{name: name, typ: f.Type})
		}
	}
	return fields
}

// jsonName is the name encoding/json reads a struct field by, or "" for a
// field it skips. Embedded structs are the caller's business.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

func lookupField(fields []jsonField, name string) (jsonField, bool) {
	for _, f := range fields {
		if f.name == name {
			return f, true
		}
	}
	return jsonField{}, false
}

// closest returns the candidate a misspelt name most likely meant, or "".
// Case is ignored and a swap of two letters counts as one edit; the allowed
// distance grows with length so that short names do not match everything.
func closest(name string, candidates []string) string {
	best, bestDist := "", math.MaxInt
	lower := strings.ToLower(name)
	for _, c := range candidates {
		d := editDistance(lower, strings.ToLower(c))
		if d <= 1+len(c)/6 && d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of adjacent runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// Field names are short; a long key cannot be close to any of them.
	if len(ra) > 64 || len(rb) > 64 {
		return math.MaxInt
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// describe names what a parsed YAML value is, for "must be X, not Y".
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "empty"
	case string:
		return "the string " + strconv.Quote(v)
	case bool:
		return strconv.FormatBool(v)
	case int, int64, uint64:
		return fmt.Sprintf("the number %d", v)
	case float64:
		return "the number " + strconv.FormatFloat(v, 'g', -1, 64)
	case yaml.MapSlice, map[any]any:
		return "a mapping"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("%v", v)
}

// jsonable converts a parsed YAML value into one encoding/json can write.
func jsonable(v any) any {
	switch v := v.(type) {
	case yaml.MapSlice:
		m := make(map[string]any, len(v))
		for _, item := range v {
			m[fmt.Sprint(item.Key)] = jsonable(item.Value)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, e := range v {
			l[i] = jsonable(e)
		}
		return l
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			// JSON has no NaN or infinity; as text the value stays invalid
			// and is reported as written.
			return strconv.FormatFloat(v, 'g', -1, 64)
		}
	}
	return v
}
