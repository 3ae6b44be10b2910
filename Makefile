# eigenscore — see README.md. Every target installs what it needs.
GO ?= go
BIN := bin/eigenscore

.PHONY: demo test test-go test-tools deps data ort build bench clean

build:
	$(GO) build -o $(BIN) ./cmd/eigenscore

deps:
	./scripts/install-deps.sh

data: deps
	./scripts/setup-data.sh

ort: deps
	./scripts/install-onnxruntime.sh >/dev/null

# The main job on the shipped defaults: Fashion-MNIST (ID) vs MNIST (OOD).
demo: data ort build
	$(BIN) eval --id fashion-mnist --ood mnist --n 100 --preset fast --json demo.json --report demo.html

test: test-go test-tools

test-go: data ort
	test -z "$$(gofmt -l .)" || (gofmt -l .; exit 1)
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

test-tools: deps
	/usr/bin/python3 -m unittest discover -s tools -v

bench: data ort
	$(GO) test -run XXX -bench . -benchtime 3x ./spectrum ./denoise/onnx

clean:
	rm -rf bin demo.json demo.html
