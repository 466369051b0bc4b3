package tmpl

import (
	"strconv"
	"strings"
	"testing"
	"text/template"
)

type inner struct {
	Shadowed []byte
	Inner    string
}

type data struct {
	inner
	Shadowed string
	Name     string
	Empty    string
	On, Off  bool
	Count    int
	Zero     uint8
	Lines    string
	private  string
	List     []string
}

func testData() data {
	return data{
		inner:    inner{Shadowed: []byte("no"), Inner: "in"},
		Shadowed: "outer", Name: "seed", On: true, Count: 3,
		Lines: "a: 1\n\nb:\n  c: 2\n", private: "x",
	}
}

func indent(args ...string) (string, error) {
	n, err := strconv.Atoi(args[0])
	if err != nil {
		return "", err
	}
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimRight(args[1], "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n"), nil
}

func TestExecuteWritesWhatTextTemplateWrites(t *testing.T) {
	for _, text := range []string{
		"",
		"no actions at all\n",
		"name: {{.Name}}, {{ .Count }} {{.On}} {{.Off}} {{.Zero}} [{{.Empty}}]\n",
		"promoted {{.Inner}}, shadowing {{.Shadowed}}\n",
		"a\n{{if .On}}\non\n{{else}}\noff\n{{end}}\nb\n",
		"a\n{{if .Off}}\non\n{{else}}\noff\n{{end}}\nb\n",
		"{{if .Name}}named{{end}}{{if .Empty}}empty{{end}}{{if .Count}}counted{{end}}{{if .Zero}}zero{{end}}\n",
		"outer\n{{- if .On }}\n  inner {{.Name}}\n  {{- if .Off }}\n  never\n  {{- end }}\n{{- end }}\ntail\n",
		"x  \n\t {{- .Name -}} \n\n  y\n",
		"{{.Count}}-{{.Count}} {{.Name -}}\n  z\n",
		"spec: |\n{{ indent 4 .Lines }}\n",
		"{{indent 0 .Name}}|{{ indent 2 .Name }}\n",
		"braces {a}{b} ${x[@]} [a-z]{6}\\.[a-z]{16}\n",
	} {
		t.Run(text, func(t *testing.T) {
			want := textTemplate(t, text, testData())
			got, err := Execute("t", text, testData(), map[string]Func{"indent": indent})
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("got\n%q\nwant (text/template)\n%q", got, want)
			}
			// A pointer to the data renders the same.
			d := testData()
			if got, err := Execute("t", text, &d, map[string]Func{"indent": indent}); err != nil || got != want {
				t.Errorf("with a pointer: %q, %v", got, err)
			}
		})
	}
}

func textTemplate(t *testing.T, text string, d data) string {
	t.Helper()
	tpl := template.Must(template.New("t").Option("missingkey=error").Funcs(template.FuncMap{
		"indent": func(n int, s string) (string, error) { return indent(strconv.Itoa(n), s) },
	}).Parse(text))
	var b strings.Builder
	if err := tpl.Execute(&b, d); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestExecuteRejectsWhatItCannotDoFaithfully(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"{{.Missing}}", "no exported field Missing"},
		{"{{.private}}", "no exported field private"},
		{"{{.List}}", "only strings, booleans and integers can be printed"},
		{"{{if .List}}x{{end}}", "only strings, booleans and integers can be tested"},
		{"{{.Name", "unclosed action"},
		{"{{if .On}}x", "if without end"},
		{"{{if .On}}x{{else}}y{{else}}z{{end}}", "a second else"},
		{"x{{end}}", "end without if"},
		{"x{{else}}", "else without if"},
		{"{{}}", "empty action"},
		{"{{.Name | printf}}", "not a field"},
		{"{{.Inner.Name}}", "not a field"},
		{"{{printf \"%s\" .Name}}", "not a field"},
		{"{{if not .On}}x{{end}}", "only {{if .Field}}"},
		{"{{else if .On}}", "only a plain {{else}}"},
		{"{{indent four .Name}}", `argument "four"`},
		{"{{/* a comment */}}", "not a field"},
		{"a\nb {{nope}}", "t:2:"},
	} {
		_, err := Execute("t", tc.text, testData(), map[string]Func{"indent": indent})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Execute(%q) = %v, want an error containing %q", tc.text, err, tc.want)
		}
	}
	if _, err := Execute("t", "x", "a string", nil); err == nil {
		t.Error("data that is not a struct must be refused")
	}
	for _, d := range []any{nil, (*data)(nil)} {
		if _, err := Execute("t", "x", d, nil); err == nil {
			t.Errorf("nil data (%T) must be refused", d)
		}
	}
}
