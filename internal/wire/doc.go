// Package wire writes and reads the stored messages other than jobs and
// results (package job owns those): dead letters and parked jobs. Each format
// is written and read in one file, so that the worker that writes it and the
// operator's tools that read it back cannot drift apart.
//
// It imports, of this project, only job.
package wire
