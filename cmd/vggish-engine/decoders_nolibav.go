//go:build nolibav

package main

// Built with -tags nolibav: compressed audio is decoded by the ffmpeg command, a process per file.

const decoderWorkers = false

func decoderWorkerMain() {}

func useDecoders() (stop func()) { return func() {} }
