package tmpl

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Func is a function templates may call, as in {{indent 4 .Text}}. It gets
// its arguments as text: integer literals as written, fields as printed.
type Func func(args ...string) (string, error)

// Execute expands text with data, a struct or a pointer to one, whose
// exported fields of string, boolean or integer kind the actions name. A
// field that does not exist is an error, as with text/template's
// missingkey=error; so is any action outside the subset.
func Execute(name, text string, data any, funcs map[string]Func) (string, error) {
	nodes, err := parse(name, text, funcs)
	if err != nil {
		return "", err
	}
	v := reflect.ValueOf(data)
	if !v.IsValid() {
		return "", fmt.Errorf("template %s: nil data", name)
	}
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "", fmt.Errorf("template %s: nil data", name)
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return "", fmt.Errorf("template %s: data is a %s, not a struct", name, v.Type())
	}
	var b strings.Builder
	if err := execute(&b, nodes, v, funcs, name); err != nil {
		return "", err
	}
	return b.String(), nil
}

type nodeKind int

const (
	textNode nodeKind = iota
	fieldNode
	callNode
	ifNode
)

type arg struct {
	field   string // set for a field argument
	literal string // set for an integer literal
}

type node struct {
	kind nodeKind
	line int
	text string // textNode: the text; fieldNode: the field; callNode: the function
	args []arg  // callNode
	cond string // ifNode: the field tested
	then []node // ifNode
	els  []node // ifNode
}

// spaceChars are what trim markers remove, as in text/template.
const spaceChars = " \t\r\n"

// item is a run of text or one action, its trim markers applied.
type item struct {
	action bool
	text   string // the text, or the action between its delimiters
	words  []string
	line   int
}

func lex(name, text string) ([]item, error) {
	var items []item
	trimNext := false
	for pos := 0; ; {
		start := strings.Index(text[pos:], "{{")
		lit := text[pos:]
		if start >= 0 {
			lit = text[pos : pos+start]
		}
		if trimNext {
			lit = strings.TrimLeft(lit, spaceChars)
			trimNext = false
		}
		if start < 0 {
			return append(items, item{text: lit}), nil
		}
		start += pos
		line := 1 + strings.Count(text[:start], "\n")
		end := strings.Index(text[start+2:], "}}")
		if end < 0 {
			return nil, fmt.Errorf("template %s:%d: unclosed action", name, line)
		}
		action := text[start+2 : start+2+end]
		pos = start + 2 + end + 2
		// "{{- " and " -}}" trim the white space beside the action; a dash
		// without the space is part of the action (a negative number).
		if len(action) >= 2 && action[0] == '-' && strings.IndexByte(spaceChars, action[1]) >= 0 {
			lit = strings.TrimRight(lit, spaceChars)
			action = action[1:]
		}
		if n := len(action); n >= 2 && action[n-1] == '-' && strings.IndexByte(spaceChars, action[n-2]) >= 0 {
			trimNext = true
			action = action[:n-1]
		}
		action = strings.TrimSpace(action)
		items = append(items, item{text: lit}, item{action: true, text: action, words: strings.Fields(action), line: line})
	}
}

type parser struct {
	name  string
	items []item
	pos   int
	funcs map[string]Func
}

func parse(name, text string, funcs map[string]Func) ([]node, error) {
	items, err := lex(name, text)
	if err != nil {
		return nil, err
	}
	p := &parser{name: name, items: items, funcs: funcs}
	nodes, stop, err := p.list()
	if err != nil {
		return nil, err
	}
	if stop != nil {
		return nil, p.errorf(stop, "%s without if", stop.words[0])
	}
	return nodes, nil
}

func (p *parser) errorf(it *item, format string, a ...any) error {
	return fmt.Errorf("template %s:%d: {{%s}}: %s", p.name, it.line, it.text, fmt.Sprintf(format, a...))
}

// list parses nodes up to the end of the text or an else or end action,
// which it returns.
func (p *parser) list() ([]node, *item, error) {
	var nodes []node
	for p.pos < len(p.items) {
		it := &p.items[p.pos]
		p.pos++
		if !it.action {
			if it.text != "" {
				nodes = append(nodes, node{kind: textNode, text: it.text})
			}
			continue
		}
		w := it.words
		switch {
		case len(w) == 0:
			return nil, nil, p.errorf(it, "empty action")
		case len(w) == 1 && isField(w[0]):
			nodes = append(nodes, node{kind: fieldNode, line: it.line, text: w[0][1:]})
		case w[0] == "else" || w[0] == "end":
			if len(w) != 1 {
				return nil, nil, p.errorf(it, "only a plain {{%s}} is supported", w[0])
			}
			return nodes, it, nil
		case w[0] == "if":
			if len(w) != 2 || !isField(w[1]) {
				return nil, nil, p.errorf(it, "only {{if .Field}} is supported")
			}
			n := node{kind: ifNode, line: it.line, cond: w[1][1:]}
			var stop *item
			var err error
			if n.then, stop, err = p.list(); err != nil {
				return nil, nil, err
			}
			if stop != nil && stop.words[0] == "else" {
				if n.els, stop, err = p.list(); err != nil {
					return nil, nil, err
				}
				if stop != nil && stop.words[0] == "else" {
					return nil, nil, p.errorf(stop, "a second else")
				}
			}
			if stop == nil || stop.words[0] != "end" {
				return nil, nil, p.errorf(it, "if without end")
			}
			nodes = append(nodes, n)
		case p.funcs[w[0]] != nil:
			n := node{kind: callNode, line: it.line, text: w[0]}
			for _, a := range w[1:] {
				switch {
				case isField(a):
					n.args = append(n.args, arg{field: a[1:]})
				case isInt(a):
					n.args = append(n.args, arg{literal: a})
				default:
					return nil, nil, p.errorf(it, "argument %q is neither a field nor an integer", a)
				}
			}
			nodes = append(nodes, n)
		default:
			return nil, nil, p.errorf(it, "not a field, if, else, end or known function")
		}
	}
	return nodes, nil, nil
}

// isField reports whether w is ".Name", one exported-looking identifier.
func isField(w string) bool {
	if len(w) < 2 || w[0] != '.' {
		return false
	}
	for i, r := range w[1:] {
		letter := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}

func isInt(w string) bool {
	_, err := strconv.Atoi(w)
	return err == nil
}

func execute(b *strings.Builder, nodes []node, data reflect.Value, funcs map[string]Func, name string) error {
	for _, n := range nodes {
		switch n.kind {
		case textNode:
			b.WriteString(n.text)
		case fieldNode:
			s, err := format(data, n.text)
			if err != nil {
				return fmt.Errorf("template %s:%d: %w", name, n.line, err)
			}
			b.WriteString(s)
		case callNode:
			args := make([]string, len(n.args))
			for i, a := range n.args {
				args[i] = a.literal
				if a.field != "" {
					s, err := format(data, a.field)
					if err != nil {
						return fmt.Errorf("template %s:%d: %w", name, n.line, err)
					}
					args[i] = s
				}
			}
			s, err := funcs[n.text](args...)
			if err != nil {
				return fmt.Errorf("template %s:%d: calling %s: %w", name, n.line, n.text, err)
			}
			b.WriteString(s)
		case ifNode:
			ok, err := truth(data, n.cond)
			if err != nil {
				return fmt.Errorf("template %s:%d: %w", name, n.line, err)
			}
			branch := n.els
			if ok {
				branch = n.then
			}
			if err := execute(b, branch, data, funcs, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// field finds an exported field by name, promoted ones included.
func field(data reflect.Value, name string) (reflect.Value, error) {
	sf, ok := data.Type().FieldByName(name)
	if !ok || !sf.IsExported() {
		return reflect.Value{}, fmt.Errorf("%s has no exported field %s", data.Type(), name)
	}
	v, err := data.FieldByIndexErr(sf.Index)
	if err != nil {
		return reflect.Value{}, fmt.Errorf("reading field %s: %w", name, err)
	}
	return v, nil
}

// format prints a field as text/template does for these kinds.
func format(data reflect.Value, name string) (string, error) {
	v, err := field(data, name)
	if err != nil {
		return "", err
	}
	switch v.Kind() {
	case reflect.String:
		return v.String(), nil
	case reflect.Bool:
		return strconv.FormatBool(v.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10), nil
	}
	return "", fmt.Errorf("field %s is a %s: only strings, booleans and integers can be printed", name, v.Type())
}

// truth is text/template's truth for these kinds: not false, empty or zero.
func truth(data reflect.Value, name string) (bool, error) {
	v, err := field(data, name)
	if err != nil {
		return false, err
	}
	switch v.Kind() {
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.String:
		return v.Len() > 0, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() != 0, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint() != 0, nil
	}
	return false, fmt.Errorf("field %s is a %s: only strings, booleans and integers can be tested", name, v.Type())
}
