package inject

import (
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
