// Command ferretdb runs FerretDB v1 (MongoDB wire protocol, SQLite backend) through its embeddable
// package. A plain `go install` of FerretDB's own cmd panics on a missing version file; this wrapper
// avoids that. Flags: -listen 127.0.0.1:27017 -data /path/to/dir [-log-level warn]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	data := flag.String("data", "", "directory holding the SQLite databases (required)")
	level := flag.String("log-level", "warn", "debug, info, warn or error (info logs every connection)")
	flag.Parse()

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		log.Fatalf("ferretdb: -log-level %q: %v", *level, err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	if *data == "" {
		log.Fatal("ferretdb: -data is required")
	}
	abs, err := filepath.Abs(*data)
	if err != nil {
		log.Fatalf("ferretdb: data dir %q: %v", *data, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		log.Fatalf("ferretdb: create data dir %q: %v", abs, err)
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
	})
	if err != nil {
		log.Fatalf("ferretdb: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	fmt.Printf("ferretdb: listening on %s, data in %s\n", *listen, abs)
	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatalf("ferretdb: %v", err)
	}
	fmt.Println("ferretdb: stopped")
}
