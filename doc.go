// Package eigenscore tells whether an image is out-of-distribution (OOD)
// for a diffusion model, with EigenScore (Shoushtari et al., arXiv
// 2510.07206).
//
// A diffusion model's denoiser D(y, σ) estimates E[x | y] for noisy images
// y = x + σ·n; its Jacobian gives the posterior covariance
// Cov[x|y] = σ²·∂D/∂y. EigenScore estimates the covariance's top-k
// eigenvalues with a subspace iteration that needs only forward passes, at
// several σ and noise draws, and scores an image by how far the eigenvalue
// sums lie from those of in-distribution (ID) images.
//
// The API has three steps:
//
//   - open a Model: OpenModel for an ONNX file, models.Open for a shipped
//     network, NewModel for any denoise.Denoiser (such as the closed-form
//     Gaussian mixture of package denoise/gmm). A Model owns its resources
//     until Close.
//   - Fit a Detector on ID images only. Options choose the method (package
//     method: by default the recommended one, the paper's EigenScore; the
//     combination of EigenScore with three other detectors, or a baseline,
//     on request), the estimator preset, the noise levels, the ID
//     acceptance rate and the seed; nil Options are a sensible default.
//   - Score new images with the Detector and the same Model: a score, a
//     flag and the features behind them per image, and on request
//     (ScoreOptions.Explain) an Explanation: where in the image, and at
//     which σ, the model's posterior is unusually uncertain. Save and Load
//     keep a Detector as a versioned JSON file that is validated when read.
//
// The same seed gives the same noise draws whatever the batch sizes, and an
// image's score depends only on its pixels, not on the other images scored
// with it: exactly with a float64 denoiser (the Gaussian mixture), and to
// float32 rounding (about 1e-7 relative) with ONNX Runtime, whose kernels
// round a row's output slightly differently depending on its place in a
// run. Scoring the same images in the same calls gives the same bits.
// Images are data.Dataset values: float32 pixels in [-1, 1], laid out
// N×C×H×W.
package eigenscore
