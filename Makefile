# The whole test suite: formatting, vet, staticcheck, then every test with
# the race detector. Needs only Go; staticcheck is fetched through the module
# proxy at a pinned version.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.7.0

.PHONY: test demo bench
test:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed on: $$unformatted"; exit 1; fi
	go vet ./...
	go run $(STATICCHECK) ./...
	go test -race -count=1 ./...

demo:
	go run ./demo

bench:
	go run ./bench
