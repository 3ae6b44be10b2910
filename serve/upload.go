package serve

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"

	"github.com/eigenscore/eigenscore/data"
)

// readScoreBody decodes POST /v1/score's body by its Content-Type: JSON
// (decodeScoreRequest), one PNG or JPEG image, or multipart/form-data whose
// parts are PNG or JPEG images. Images are converted to the model's shape
// and scale by data.DecodeImage, the rule image folders are read with.
func (s *Server) readScoreBody(r *http.Request) ([]float32, int, error) {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, 0, statusError(http.StatusUnsupportedMediaType, "Content-Type %q: %v; want application/json, image/png, image/jpeg or multipart/form-data", ct, err)
	}
	switch mt {
	case "application/json":
		return decodeScoreRequest(s.body(r), s.det.Shape(), s.opts.MaxImages)
	case "image/png", "image/jpeg":
		img, err := data.DecodeImage(s.body(r), s.det.Shape())
		if err != nil {
			return nil, 0, fmt.Errorf("image: %w", err)
		}
		return img, 1, nil
	case "multipart/form-data":
		return s.readParts(multipart.NewReader(s.body(r), params["boundary"]))
	}
	return nil, 0, statusError(http.StatusUnsupportedMediaType, "Content-Type %q; want application/json, image/png, image/jpeg or multipart/form-data", mt)
}

// readParts decodes every part of a multipart body as an image, in order.
func (s *Server) readParts(mr *multipart.Reader) ([]float32, int, error) {
	var pixels []float32
	n := 0
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("multipart body: %w", err)
		}
		if n == s.opts.MaxImages {
			return nil, 0, &errTooMany{fmt.Sprintf("more than %d images; send at most %d per request", s.opts.MaxImages, s.opts.MaxImages)}
		}
		img, err := data.DecodeImage(part, s.det.Shape())
		name := part.FileName()
		if name == "" {
			name = part.FormName()
		}
		part.Close()
		if err != nil {
			return nil, 0, fmt.Errorf("image %d (%s): %w", n, name, err)
		}
		pixels = append(pixels, img...)
		n++
	}
	if n == 0 {
		return nil, 0, fmt.Errorf("multipart body has no images")
	}
	return pixels, n, nil
}
