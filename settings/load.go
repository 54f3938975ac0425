package settings

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Load fills the tagged fields of the struct spec points to from the
// environment, by this package's rules. A field whose variable is unset
// keeps its default tag's value, or else the value it had. Tags:
//
//	envconfig:"NAME"   the variable, read by envconfig (empty prefix)
//	default:"5s"       the value when unset or empty
//	kind:"admin"       string kinds: admin (an admin address), url (an
//	                   http(s) URL), loglevel, logformat; []string: urls
//	min:"1ms"          durations and ints: the least value accepted
//	empty:"none"       strings: set but empty is "" (none), not unset
//
// A variable listed in InheritedVars is read by its peers' rule instead:
// never an error, a warning in e.Warnings when read leniently. The first
// bad value of our own is returned as an *Error.
//
// envconfig reads the variables' text from the environment (gather); this
// package's parsers then read each value by its kind's rule.
func Load(e *Env, spec any) error {
	v := reflect.ValueOf(spec).Elem()
	t := v.Type()
	if e.Lookup == nil {
		e.gather(t)
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("envconfig")
		if name == "" {
			continue
		}
		if err := loadField(e, name, f.Tag, v.Field(i)); err != nil {
			return err
		}
	}
	return nil
}

// rawValue is one variable's text as envconfig found it. Decoding never
// fails: the parsers below judge the value, so every error names the
// variable, echoes the value and says what is valid, in this package's words.
type rawValue struct {
	s   string
	set bool // in the environment, maybe empty
}

// Decode implements envconfig.Decoder.
func (r *rawValue) Decode(s string) error {
	r.s, r.set = s, true
	return nil
}

var rawType = reflect.TypeOf(rawValue{})

// gather reads the text of every variable spec's type names with
// envconfig.Process into e, for lookup. The prefix is empty, so each tag is
// the whole variable name and no other name is consulted; no default tag is
// passed on, so an unset variable stays unset for the rules below.
func (e *Env) gather(t reflect.Type) {
	var fields []reflect.StructField
	for i := 0; i < t.NumField(); i++ {
		if name := t.Field(i).Tag.Get("envconfig"); name != "" {
			fields = append(fields, reflect.StructField{
				Name: fmt.Sprintf("V%d", len(fields)), Type: rawType,
				Tag: reflect.StructTag(fmt.Sprintf("envconfig:%q", name)),
			})
		}
	}
	raw := reflect.New(reflect.StructOf(fields))
	if err := envconfig.Process("", raw.Interface()); err != nil {
		// Only a spec that is not a struct pointer or a failing Decode
		// can fail; neither can happen here.
		panic("settings: envconfig: " + err.Error())
	}
	if e.gathered == nil {
		e.gathered = map[string]rawValue{}
	}
	for i, f := range fields {
		e.gathered[f.Tag.Get("envconfig")] = raw.Elem().Field(i).Interface().(rawValue)
	}
}

var durationType = reflect.TypeOf(time.Duration(0))

func loadField(e *Env, name string, tag reflect.StructTag, fv reflect.Value) error {
	def := tag.Get("default")
	inh, inherited := Lookup(name)
	kind := tag.Get("kind")
	switch {
	case fv.Type() == durationType:
		d, min := time.Duration(fv.Int()), time.Duration(0) // a preset value is the default
		var err error
		if def != "" {
			if d, err = ParseDuration(def); err != nil {
				panic(fmt.Sprintf("settings: default of %s: %v", name, err))
			}
		}
		if m := tag.Get("min"); m != "" {
			min, _ = ParseDuration(m)
		}
		if inherited && inh.Kind == KindDuration {
			d, _ = e.PeerDuration(name, d, min > 0)
		} else if d, err = e.Duration(name, d, min); err != nil {
			return err
		}
		fv.SetInt(int64(d))
	case fv.Kind() == reflect.Bool:
		b := fv.Bool() || def == "true"
		if inherited && inh.Kind == KindFlag {
			b = e.PeerBool(name, b)
		} else {
			var err error
			if b, err = e.Bool(name, b); err != nil {
				return err
			}
		}
		fv.SetBool(b)
	case fv.Kind() == reflect.Pointer && fv.Type().Elem().Kind() == reflect.Bool:
		// Unset stays nil: "not said" differs from the default here.
		if _, set := e.Get(name); !set {
			return nil
		}
		b := true
		if inherited && inh.Kind == KindFlag {
			b = e.PeerBool(name, inh.Def == "true")
		} else {
			var err error
			if b, err = e.Bool(name, false); err != nil {
				return err
			}
		}
		fv.Set(reflect.ValueOf(&b))
	case fv.Kind() == reflect.Int || fv.Kind() == reflect.Int64 || fv.Kind() == reflect.Uint64:
		var lo, hi, d int64 = 0, math.MaxInt64, 0
		if fv.Kind() == reflect.Uint64 {
			d = int64(min(fv.Uint(), math.MaxInt64))
		} else {
			d = fv.Int()
		}
		if m := tag.Get("min"); m != "" {
			lo, _ = ParseInt(m, -1<<62, 1<<62)
		}
		if def != "" {
			d, _ = ParseInt(def, lo, hi)
		}
		n, err := e.Int(name, d, lo, hi)
		if err != nil {
			return err
		}
		if fv.Kind() == reflect.Uint64 {
			fv.SetUint(uint64(n))
		} else {
			fv.SetInt(n)
		}
	case fv.Kind() == reflect.String:
		s, set := e.Get(name)
		if tag.Get("empty") == "none" {
			// This variable's empty value means "none", not unset.
			if raw, ok := e.lookup(name); ok && raw == "" {
				fv.SetString("")
				return nil
			}
		}
		if !set && def == "" {
			return nil // keeps its preset value
		}
		if !set {
			s = def
		}
		if s == "" {
			fv.SetString(s)
			return nil
		}
		raw := s
		var err error
		switch kind {
		case "admin":
			s, err = ParseAdmin(raw)
			err = wrapErr(name, raw, ValidAdmin, err)
		case "url":
			s, err = ParseHTTPURL(raw)
			err = wrapErr(name, raw, ValidHTTPURL, err)
		case "loglevel":
			s, err = ParseLogLevel(raw)
			err = wrapErr(name, raw, ValidLogLevel, err)
		case "logformat":
			s, err = ParseLogFormat(raw)
			err = wrapErr(name, raw, ValidLogFormat, err)
		}
		if err != nil {
			return err
		}
		fv.SetString(s)
	case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String:
		s, set := e.Get(name)
		if !set && def == "" {
			return nil // keeps its preset value
		}
		if !set {
			s = def
		}
		var list []string
		for _, item := range strings.Split(s, ",") {
			if item = strings.TrimSpace(item); item == "" {
				continue
			}
			if kind == "urls" {
				if _, err := ParseHTTPURL(item); err != nil {
					if inherited {
						e.warn(name, item, "nothing (skipped)", "not "+ValidHTTPURL+": "+err.Error()+"; "+strings.Join(inh.Peers, " and ")+" POSTed it and logged the failure")
						continue
					}
					return &Error{Name: name, Value: item, Valid: "comma-separated " + ValidHTTPURL + "s", Err: err}
				}
			}
			list = append(list, item)
		}
		fv.Set(reflect.ValueOf(list))
	default:
		panic(fmt.Sprintf("settings: %s has unsupported type %s", name, fv.Type()))
	}
	return nil
}

func wrapErr(name, value, valid string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Name: name, Value: value, Valid: valid, Err: err}
}
