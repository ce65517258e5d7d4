package resolver

import "time"

// The resolver's defaults, each with the reason for its value, in one place
// as go-containerregistry's remote/options.go keeps its own. Bounds of the
// policy fields tenants write are in bounds.go; max_candidate_tags'
// default is DefaultMaxCandidates (policy.go), since config documents it.
const (
	// defaultFailureTTL is how long a failed lookup is answered from
	// memory: long enough that a dead registry sees one request per key
	// every few seconds rather than one per admission, short enough that a
	// registry back up is used again before anyone notices.
	defaultFailureTTL = 3 * time.Second

	// defaultAnswers bounds the answers cache (the last known good) in
	// claims: 20,000 answers of about 300 bytes are a few MiB, more
	// distinct (entry, image, policy) triples than real clusters run.
	defaultAnswers = 20000
	// pastAnswers bounds the answers an answer in memory keeps of those it
	// replaced (a tag that moved), for Resolver.Gave: an UPDATE that
	// re-applies or opts out an object pinned before the move is told
	// from one whose digest the webhook never chose. A tag moves a few
	// times in the life of its pins; 4 of about 100 bytes each add at
	// most 8 MiB to a full answers cache of tags that all moved 4 times,
	// and nothing to the others. --state cluster keeps 10 in each record.
	pastAnswers = 4
	// defaultMetadata bounds the metadata cache: one entry per digest read
	// for newest-build or platforms, which never changes for the digest.
	defaultMetadata = 20000
	// defaultDescriptors and defaultFailures bound the descriptor and
	// failure caches like the answers they serve: at most one per answer.
	defaultDescriptors = defaultAnswers
	defaultFailures    = defaultAnswers

	// maxCachedTags bounds the tags held by the tag-list cache in all
	// (about 10 MiB at 50 bytes a tag). One listing is bounded by
	// client.Client.ListTags.
	maxCachedTags = 200_000
	// tagListOverhead is what one list costs in the tag-list cache beyond
	// its tags, counted in tags: the key and bookkeeping of a list are
	// worth about 100 tags, so maxCachedTags holds at most 2,000 lists (the
	// bound of lists before the cache was shared by namespace) however
	// short they are.
	tagListOverhead = 100

	// tagsPageSize is how many tags one page of a listing asks for: Docker
	// Hub and distribution answer up to 1,000 (distribution's default
	// maximum), so fewer pages mean fewer rate-limit tokens.
	tagsPageSize = 1000

	// lookupReserve bounds the part of a caller's time kept back from the
	// lookup it starts, so that the lookup's own error (which says how far
	// it got, e.g. how many tags newest-build read) reaches the caller
	// before the caller's deadline does, and not a bare "deadline
	// exceeded".
	lookupReserve = 250 * time.Millisecond
	// lookupReserveShare: a short deadline keeps back a tenth of its time
	// rather than lookupReserve, so a 1s admission still gives its lookup
	// 900ms.
	lookupReserveShare = 10
	// budgetSlack is how much more time than a timed-out lookup had a
	// caller must have to try again rather than be held to its failure:
	// two callers of the same admission deadline differ by the
	// microseconds between them, which must not count as more time.
	budgetSlack = 10 * time.Millisecond

	// newestBuildWorkers is how many candidate tags newest-build reads at
	// once: enough to hide a registry's latency (8 × two requests), few
	// enough that one lookup holds a bounded number of goroutines and
	// connections whatever the number of tags.
	newestBuildWorkers = 8

	// maxIndexImages bounds the images of one index whose build date
	// newest-build reads (two requests each): max_candidate_tags bounds the
	// candidates, and this what one candidate may cost. Multi-arch indexes
	// list a handful of platforms (and their attestations, not read).
	maxIndexImages = 32
	// maxIndexPlatforms and maxPlatformBytes bound what the metadata cache
	// keeps of one index (its distinct platforms), which a tenant writes:
	// 20,000 cached indexes of 10,000 platforms each would be gigabytes.
	// Real indexes list a handful of platforms, each os/arch/variant of a
	// few dozen bytes; past either bound the index is an error.
	maxIndexPlatforms = 256
	maxPlatformBytes  = 128

	// maxConfigBytes bounds the config blob newest-build reads for its
	// build date: real configs are KiB, and go-containerregistry reads
	// whatever size the manifest declares (a 192 MiB config once cost 914
	// MiB).
	maxConfigBytes = 4 << 20
	// maxManifestBytes bounds every manifest or index the resolver reads,
	// far below go-containerregistry's own 100 MiB (which is the chart's
	// whole memory limit, twice over with the copy it decodes): real
	// manifests are a few KiB, a 100-platform index with attestations
	// under 100 KiB, and distribution itself refuses to store manifests
	// over 4 MiB.
	maxManifestBytes = 4 << 20
	// maxReadBytes and maxReadBytesPerNamespace bound the manifests and
	// configs being read and decoded at once (byteBudget): 16 MiB is four
	// manifests at the cap, or thousands of real ones (a few KiB each); an
	// index decodes into up to about 7 times its size, so at the bound the
	// reads hold about 110 MiB, inside the chart's 256 MiB limit. One
	// namespace reads at most one manifest at the cap at a time.
	maxReadBytes             = 16 << 20
	maxReadBytesPerNamespace = maxManifestBytes
	// unknownLengthCharge is what a manifest sent without a Content-Length
	// (chunked, or gzip the transport undid) is charged: real manifests
	// are a few KiB, and charged the cap each such read took a namespace's
	// whole share, one at a time. One longer than this is read again (one
	// more GET) on a charge of the cap, holding nothing while it waits, so
	// no read holds bytes it was not charged and none waits holding some.
	unknownLengthCharge = 64 << 10
)
