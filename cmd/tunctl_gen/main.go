// Command tunctl_gen renders the protocol's Go declaration (package
// portproto) into the generated regions of doc/protocol.md and into
// erlang/include/tunctl_proto.hrl. `make generate` runs it from the
// repository's root; portproto's TestGeneratedFilesCurrent fails when the
// committed files differ from what it would write.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tunctl/tunctl/portproto"
)

func main() {
	doc := flag.String("doc", "doc/protocol.md", "protocol document to update")
	hrl := flag.String("hrl", "erlang/include/tunctl_proto.hrl", "Erlang header to write")
	flag.Parse()
	if err := run(*doc, *hrl); err != nil {
		fmt.Fprintln(os.Stderr, "tunctl_gen:", err)
		os.Exit(1)
	}
}

func run(docPath, hrlPath string) error {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		return err
	}
	rendered, err := portproto.RenderDoc(doc)
	if err != nil {
		return err
	}
	hdr, err := portproto.RenderHeader()
	if err != nil {
		return err
	}
	if err := os.WriteFile(docPath, rendered, 0o644); err != nil {
		return err
	}
	return os.WriteFile(hrlPath, hdr, 0o644)
}
