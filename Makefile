# The whole test suite: formatting, vet, staticcheck, then every test with
# the race detector. Needs only Go; staticcheck is fetched through the module
# proxy at a pinned version.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.7.0

# The real-node tests (e2e/) run last and alone: they start a Kubernetes
# node whose timing the other packages' tests would disturb. Without root
# they skip with one line. A cold run builds Kubernetes (about 6 minutes on 2
# cores), hence the long timeout.
E2E_TIMEOUT := 40m

.PHONY: test e2e demo bench
test:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed on: $$unformatted"; exit 1; fi
	go vet ./...
	go run $(STATICCHECK) ./...
	go test -race -count=1 $$(go list ./... | grep -v '/e2e$$')
	$(MAKE) e2e

# The examples on a real single-node Kubernetes (root; see README.md).
e2e:
	go test -count=1 -timeout $(E2E_TIMEOUT) -v ./e2e

demo:
	go run ./demo

bench:
	go run ./bench
