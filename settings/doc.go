package settings

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"envoy-lifecycle/cli"
)

// Var is one documented variable, read from a spec's tags.
type Var struct {
	Name, Default, From, Desc string
}

// Vars lists the tagged fields of the struct spec points to, in order:
// the default is the show tag (a default computed elsewhere, in words), the
// default tag, or else the field's preset value. An
// inherited variable's origin is its peers in InheritedVars.
func Vars(spec any) []Var {
	sv := reflect.ValueOf(spec).Elem()
	t := sv.Type()
	var out []Var
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("envconfig")
		if name == "" {
			continue
		}
		v := Var{Name: name, Default: f.Tag.Get("default"), From: f.Tag.Get("from"), Desc: f.Tag.Get("desc")}
		if fv := sv.Field(i); v.Default == "" && !fv.IsZero() {
			// A preset value is the default (Load keeps it).
			if d, ok := fv.Interface().(time.Duration); ok {
				v.Default = FormatDuration(d)
			} else {
				v.Default = fmt.Sprint(fv.Interface())
			}
		}
		if show := f.Tag.Get("show"); show != "" {
			v.Default = show // a default the code computes, in words
		}
		if inh, ok := Lookup(name); ok {
			v.From = strings.Join(inh.Peers, ", ") // one source for who had it
		}
		out = append(out, v)
	}
	return out
}

// WriteUsage writes the variables for `help`: one heading line each (name,
// origin, default), then the meaning, wrapped at cli.Width.
func WriteUsage(w io.Writer, vars []Var) {
	var b strings.Builder
	for _, v := range vars {
		head := "  " + v.Name
		var notes []string
		if v.From != "" {
			notes = append(notes, "from "+v.From)
		}
		if v.Default != "" {
			notes = append(notes, "default "+v.Default)
		}
		if len(notes) > 0 {
			n := "(" + strings.Join(notes, "; ") + ")"
			if len(head)+2+len(n) <= cli.Width {
				head += "  " + n
			} else {
				head += "\n      " + n // too long for one line: under the name
			}
		}
		fmt.Fprintf(&b, "%s\n      %s\n", head, v.Desc)
	}
	io.WriteString(w, cli.Wrap(b.String(), cli.Width))
}

// WriteMarkdown writes the README's table of the variables.
func WriteMarkdown(w io.Writer, vars []Var) {
	fmt.Fprintln(w, "| Variable | Default | From | Meaning |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, v := range vars {
		def, from := "–", "–"
		if v.Default != "" {
			def = v.Default
		}
		if v.From != "" {
			from = v.From
		}
		fmt.Fprintf(w, "| `%s` | %s | %s | %s |\n", v.Name, def, from, strings.ReplaceAll(v.Desc, "|", `\|`))
	}
}
