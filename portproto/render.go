package portproto

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// Rendering of the protocol's declaration (spec.go, table.go) into
// doc/protocol.md and erlang/include/tunctl_proto.hrl. cmd/tunctl_gen
// writes the files; TestGeneratedFilesCurrent checks them.

// Generated regions of doc/protocol.md, in the order they appear. Each is
// delimited by lines "<!-- generated: NAME ... -->" and
// "<!-- end generated: NAME -->"; the text outside is written by hand.
var docRegions = []struct {
	name   string
	render func() (string, error)
}{
	{"vocabulary", renderRules},
	{"port-frames", func() (string, error) { return renderTerms("frame", "when", PortFrames) }},
	{"beam-frames", func() (string, error) { return renderTerms("frame", "reply", BEAMFrames) }},
	{"commands", func() (string, error) { return renderTerms("command", "result", CommandTable()) }},
	{"errors", renderErrors},
}

// RenderDoc returns doc (doc/protocol.md) with its generated regions
// rendered from the declaration; an error when a region's markers are
// missing or a placeholder is unknown.
func RenderDoc(doc []byte) ([]byte, error) {
	out := doc
	for _, r := range docRegions {
		begin := []byte("<!-- generated: " + r.name + " ")
		end := []byte("<!-- end generated: " + r.name + " -->")
		b := bytes.Index(out, begin)
		e := bytes.Index(out, end)
		if b < 0 || e < b {
			return nil, fmt.Errorf("doc: no region %q (markers %q ... %q)", r.name, begin, end)
		}
		nl := bytes.IndexByte(out[b:], '\n')
		if nl < 0 || b+nl >= e {
			return nil, fmt.Errorf("doc: region %q: begin marker not on its own line", r.name)
		}
		body, err := r.render()
		if err != nil {
			return nil, fmt.Errorf("doc: region %q: %w", r.name, err)
		}
		var buf bytes.Buffer
		buf.Write(out[:b+nl+1])
		buf.WriteString(body)
		buf.Write(out[e:])
		out = buf.Bytes()
	}
	return out, nil
}

func renderRules() (string, error) {
	var b strings.Builder
	b.WriteString("| rule | value | Go (`portproto`) | Erlang (`tunctl_proto.hrl`) |\n| --- | --- | --- | --- |\n")
	for _, r := range Rules() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.What, r.Value, r.Go, r.Erlang)
	}
	return b.String(), nil
}

func renderTerms(col1, col2 string, terms []Term) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "| %s | %s |\n| --- | --- |\n", col1, col2)
	for _, t := range terms {
		doc, err := expand(t.Doc)
		if err != nil {
			return "", fmt.Errorf("%s: %w", t.Name, err)
		}
		fmt.Fprintf(&b, "| `%s` | %s |\n", t.Shape(), doc)
	}
	return b.String(), nil
}

func renderErrors() (string, error) {
	var b strings.Builder
	b.WriteString("| input | answer |\n| --- | --- |\n")
	for _, e := range InputErrors {
		in, err := expand(e[0])
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "| %s | %s |\n", in, e[1])
	}
	return b.String(), nil
}

// Shape is the term as written in the documentation: {name, Arg, ...}.
func (t Term) Shape() string {
	return "{" + strings.Join(append([]string{t.Name}, t.Args...), ", ") + "}"
}

var placeholder = regexp.MustCompile(`\{\{([a-z_]+)\}\}`)

// expand replaces the {{name}} placeholders of a Doc.
func expand(doc string) (string, error) {
	values := Placeholders()
	var missing []string
	out := placeholder.ReplaceAllStringFunc(doc, func(m string) string {
		name := m[2 : len(m)-2]
		v, known := values[name]
		if !known {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("unknown placeholders %v", missing)
	}
	return out, nil
}

var plainAtom = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// RenderHeader returns erlang/include/tunctl_proto.hrl: the vocabulary and
// the limits the Erlang side uses, as macros.
func RenderHeader() ([]byte, error) {
	var b strings.Builder
	b.WriteString(`%% Generated from the Go declaration of the protocol (portproto/spec.go,
%% portproto/table.go) by "make generate": do not edit. The rules are
%% listed in doc/protocol.md, "Vocabulary and limits".
-ifndef(TUNCTL_PROTO_HRL).
-define(TUNCTL_PROTO_HRL, true).

`)
	fmt.Fprintf(&b, "-define(TUNCTL_PROTO_VERSION, %d).\n", Version)
	lists := []struct {
		macro string
		names []string
	}{
		{"TUNCTL_CAPABILITIES", Capabilities},
		{"TUNCTL_DEVICE_FLAGS", FlagList()},
		{"TUNCTL_FILTER_RULES", FilterRuleNames()},
		{"TUNCTL_OFFLOADS", OffloadList()},
	}
	for _, l := range lists {
		for _, n := range l.names {
			if !plainAtom.MatchString(n) {
				return nil, fmt.Errorf("%s: %q is not a plain atom", l.macro, n)
			}
		}
		fmt.Fprintf(&b, "-define(%s, [%s]).\n", l.macro, strings.Join(l.names, ", "))
	}
	fmt.Fprintf(&b, "%%%% The same, as types.\n")
	fmt.Fprintf(&b, "-define(TUNCTL_DEVICE_FLAG_TYPE, %s).\n", strings.Join(FlagList(), " | "))
	fmt.Fprintf(&b, "-define(TUNCTL_FILTER_RULE_TYPE, %s).\n", strings.Join(FilterRuleNames(), " | "))
	b.WriteString("%% IFF_* value of each device flag.\n")
	for _, n := range FlagList() {
		fmt.Fprintf(&b, "-define(TUNCTL_IFF_%s, 16#%x).\n", strings.ToUpper(n), FlagNames[n])
	}
	b.WriteString("%% {Name, Arity} of every command of {call, Id, Cmd}, in table order.\n-define(TUNCTL_COMMANDS, [\n")
	for i, c := range commandTable {
		if !plainAtom.MatchString(c.Name) {
			return nil, fmt.Errorf("command %q is not a plain atom", c.Name)
		}
		sep := ","
		if i == len(commandTable)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "    {%s, %d}%s\n", c.Name, len(c.Args), sep)
	}
	b.WriteString("]).\n")
	for _, l := range []struct {
		macro string
		value int
	}{
		{"TUNCTL_MAX_REF", MaxRef},
		{"TUNCTL_MAX_NAME_LEN", MaxNameLen},
		{"TUNCTL_MAX_PACKET", MaxPacket},
		{"TUNCTL_MAX_FRAME", MaxFrame},
		{"TUNCTL_MAX_BATCH", readBurst},
		{"TUNCTL_MAX_ETHERTYPE", MaxEtherType},
		{"TUNCTL_MAX_IP_PROTO", MaxIPProto},
	} {
		fmt.Fprintf(&b, "-define(%s, %d).\n", l.macro, l.value)
	}
	b.WriteString("\n-endif.\n")
	return []byte(b.String()), nil
}
