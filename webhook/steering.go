package webhook

import "github.com/image-pin/image-pin-webhook/config"

// ContainerSteerings is what an object's image-pin.io/ annotations (ann,
// its metadata's) say of each of its containers (names), merged as an
// admission merges them: the container's annotations over the object's.
// It is the admission's own parser, for readers of admitted objects (the
// drift subcommand); the error names a malformed annotation.
func ContainerSteerings(ann map[string]string, names []string) (map[string]config.Steering, error) {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	ov, err := parseAnnotations(ann, set)
	if err != nil {
		return nil, err
	}
	out := make(map[string]config.Steering, len(names))
	for _, n := range names {
		out[n] = ov.forContainer(n)
	}
	return out, nil
}
