// Package pipeline scores image datasets with a calibrated eigenscore
// detector on Apache Beam, so that the same scoring runs on Beam's local
// runner (Prism), Flink, Spark or Dataflow.
//
// # The pipeline
//
//	patterns ─expand─▶ work items ─reshuffle─▶ score ─▶ part files + stats ─▶ summary
//
// Each input pattern expands to shards: files in the formats the project
// reads (IDX, .npy, CIFAR .bin, SVHN .mat) and PNG/JPEG images (a pattern
// that matches a folder takes the images under it). A data file becomes
// work items of at most Config.ItemSize images (the file × an index
// range), so one large file spreads over workers; image files are grouped
// ItemSize at a time. The scoring DoFn loads the detector and opens the
// model once per worker process (the ONNX Runtime sessions live as long as
// the worker, shared by its DoFn instances) and scores an item in one call,
// which batches it in full.
//
// # Exactly-once output
//
// An image's score depends only on its pixels and the detector's seed, so
// scoring a work item again gives the same rows. Each item's rows are
// written, in index order, to one part file whose name is derived from the
// item (source and index range), atomically (a temporary file renamed into
// place), and then a small .done file with its counts. A retried bundle
// therefore rewrites the same file with the same bytes, and a rerun of a
// failed job skips the items whose .done file exists: the output holds each
// image exactly once however often items are retried. summary.json is
// written last and lists every part file; an output folder without it is
// not complete. job.json pins the job (inputs, detector, model, item size,
// format) so that a rerun never mixes parts of two different jobs.
//
// # Bad input
//
// A shard that cannot be read fails the pipeline with an error naming the
// file, or, with Config.SkipBadInput, is left out and listed in
// failures.jsonl with the reason; the summary counts it. No image is
// dropped silently.
package pipeline
