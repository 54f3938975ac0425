package inject

import (
	"fmt"
	"testing"

	"envoy-lifecycle/inject/injecttest"
)

// BenchmarkInjectLarge injects the envoy preset into injecttest.Large
// (10,593 documents, 5 MB). Issue 13's target: at most 1 s and 100 MB.
//
//	go test -run '^$' -bench InjectLarge -benchmem ./inject
func BenchmarkInjectLarge(b *testing.B) {
	src := injecttest.Large()
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Inject("large.yaml", src, Options{Preset: "envoy", FixGrace: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInjectScale runs the envoy preset on inputs of two sizes in
// three layouts: a stream of small documents, one pretty JSON List, and
// one minified JSON List on one line. Each cost (ns/op, B/op) must about
// double from n to 2n: it grows linearly with the input.
//
//	go test -run '^$' -bench InjectScale -benchtime 2x -benchmem ./inject
func BenchmarkInjectScale(b *testing.B) {
	for _, n := range []int{250, 500} {
		for _, in := range []struct {
			name string
			src  []byte
		}{
			{"stream", injecttest.Stream(4 * n)},
			{"json-list", injecttest.JSONList(n, "    ")},
			{"json-one-line", injecttest.JSONList(n, "")},
		} {
			b.Run(fmt.Sprintf("%s-%d", in.name, n), func(b *testing.B) {
				b.SetBytes(int64(len(in.src)))
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := Inject("m", in.src, Options{Preset: "envoy", FixGrace: true}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
