package portproto

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// doc/protocol.md's tables and the Erlang header are rendered from the Go
// declaration: the committed files must be what `make generate` writes.
// The files are part of the repository, so a missing one is a failure,
// never a skip.
func TestGeneratedFilesCurrent(t *testing.T) {
	doc, err := os.ReadFile("../doc/protocol.md")
	require.NoError(t, err)
	want, err := RenderDoc(doc)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(doc), "doc/protocol.md is stale: run `make generate` and commit the result")

	hrl, err := os.ReadFile("../erlang/include/tunctl_proto.hrl")
	require.NoError(t, err)
	wantHrl, err := RenderHeader()
	require.NoError(t, err)
	assert.Equal(t, string(wantHrl), string(hrl), "erlang/include/tunctl_proto.hrl is stale: run `make generate` and commit the result")
}

// Every command has a handler and a documentation row; names are unique.
func TestCommandTable(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range commandTable {
		assert.False(t, seen[c.Name], "command %s declared twice", c.Name)
		seen[c.Name] = true
		assert.NotNil(t, c.run, c.Name)
		assert.NotEmpty(t, c.Doc, c.Name)
		_, err := expand(c.Doc)
		assert.NoError(t, err, c.Name)
	}
	assert.Len(t, commands, len(commandTable))
	assert.Equal(t, len(commandTable), len(Commands()))
}

// A region whose markers are missing is an error, not silently skipped.
func TestRenderDocNeedsMarkers(t *testing.T) {
	_, err := RenderDoc([]byte("# no markers\n"))
	assert.Error(t, err)
	_, err = expand("{{no_such_placeholder}}")
	assert.Error(t, err)
}

func TestRenderHeader(t *testing.T) {
	hrl, err := RenderHeader()
	require.NoError(t, err)
	s := string(hrl)
	assert.Contains(t, s, "-define(TUNCTL_PROTO_VERSION, 1).")
	assert.Contains(t, s, "    {open, 3},")
	assert.Contains(t, s, "-define(TUNCTL_MAX_PACKET, 65551).")
	assert.Contains(t, s, "-define(TUNCTL_IFF_NO_PI, 16#1000).")
	assert.True(t, strings.HasSuffix(s, "-endif.\n"))
}
