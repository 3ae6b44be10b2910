module github.com/eigenscore/eigenscore

go 1.26.8

require (
	github.com/yalue/onnxruntime_go v1.27.0
	golang.org/x/image v0.30.0
	gonum.org/v1/gonum v0.17.0
)
