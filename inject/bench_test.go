package inject

import (
	"os"
	"testing"
)

// BenchmarkInjectLarge injects the envoy preset into testdata/large.yaml,
// written by go run ./bench inject (10,593 documents, 5 MB).
func BenchmarkInjectLarge(b *testing.B) {
	src, err := os.ReadFile("/tmp/h3bench/big.yaml")
	if err != nil {
		b.Skip(err)
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Inject("large.yaml", src, Options{Preset: "envoy", FixGrace: true}); err != nil {
			b.Fatal(err)
		}
	}
}
