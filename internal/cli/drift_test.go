package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-pin/image-pin-webhook/api/v1alpha1"
	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	pinhook "github.com/image-pin/image-pin-webhook/webhook"
)

func digestOf(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }

var (
	dA, dB, dC = digestOf('a'), digestOf('b'), digestOf('c')
	t0         = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
)

// record is an ImageResolution as the webhook writes one: created by ns
// through entry, for repo; digest for strategy digest (tag as given), else
// the strategy with its constraint. history is newest first.
type record struct {
	name, ns, entry, repo, strategy, tag, constraint string
	status, statusTag                                string
	resolved                                         time.Time
	history                                          []v1alpha1.HistoryEntry
	hash                                             string
}

func (r record) object() v1alpha1.ImageResolution {
	ir := v1alpha1.ImageResolution{ObjectMeta: metav1.ObjectMeta{Name: r.name, Namespace: "image-pin-system"},
		Spec: v1alpha1.ImageResolutionSpec{Registry: r.entry, Repository: r.repo, Strategy: r.strategy, Tag: r.tag,
			Constraint: r.constraint, Namespace: r.ns, TagSortMode: "none", QueryHash: r.hash},
		Status: v1alpha1.ImageResolutionStatus{Tag: r.statusTag, Digest: r.status, ResolvedAt: metav1.Time{Time: r.resolved},
			ConfirmedAt: metav1.Time{Time: r.resolved}, History: r.history}}
	if ir.Spec.Strategy == "" {
		ir.Spec.Strategy = "digest"
	}
	if ir.Status.Tag == "" {
		ir.Status.Tag = r.tag
	}
	return ir
}

func moved(tag, digest string, seen, until time.Time) v1alpha1.HistoryEntry {
	return v1alpha1.HistoryEntry{Tag: tag, Digest: digest, Seen: metav1.Time{Time: seen}, Until: metav1.Time{Time: until}}
}

// pinnedCtr is a Deployment's container: written as written, stored as
// stored, in ns.
func pinnedCtr(ns, written, stored string) driftContainer {
	return driftContainer{Namespace: ns, Kind: kindDeployment, Name: "web", Container: "app", Type: typeContainer, Written: written, Stored: stored}
}

func steered(c driftContainer, ann map[string]string) driftContainer {
	s, err := pinhook.ContainerSteerings(ann, []string{c.Container})
	c.Steering, c.SteeringErr = s[c.Container], err
	return c
}

const reg = "reg.example:5000"

// driftConfig has a tenant entry scoped to tenant-a-* and a catch-all on
// the same registry, and a semver rule.
const driftConfig = `registries:
- name: tenant a
  api_url: http://reg.example:5000
  prefix: reg.example:5000/tenant
  namespaces: ["tenant-a-*"]
- name: catch-all
  api_url: http://reg.example:5000
  prefix: reg.example:5000
policy:
  images:
  - prefix: reg.example:5000/acme/api
    constraint: "~1.4"
`

func loadDriftConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(driftConfig))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestDriftJudgesEachContainerAgainstItsRecord(t *testing.T) {
	app := reg + "/team/app:latest"
	digestRec := record{name: "q-app", ns: "team-a", entry: "catch-all", repo: "team/app", tag: "latest", status: dB,
		resolved: t0.Add(time.Hour), history: []v1alpha1.HistoryEntry{moved("latest", dA, t0, t0.Add(time.Hour))}}
	tests := []struct {
		name       string
		cfg        bool
		records    []record
		ctr        driftContainer
		wantOK     bool
		wantStatus string
		wantRecord string
		wantSince  string
		wantReason string
	}{
		{name: "a Deployment pinned to a digest its record has since replaced drifted when the replacement was resolved",
			records: []record{digestRec}, ctr: pinnedCtr("team-a", app, app+"@"+dA),
			wantOK: true, wantStatus: statusDrifted, wantRecord: "q-app", wantSince: "2026-12-01T11:00:00Z"},
		{name: "a pin two answers back drifted when its own answer was replaced",
			records: []record{{name: "q-app", ns: "team-a", entry: "catch-all", repo: "team/app", tag: "latest", status: dC, resolved: t0.Add(2 * time.Hour),
				history: []v1alpha1.HistoryEntry{moved("latest", dB, t0.Add(time.Hour), t0.Add(2*time.Hour)), moved("latest", dA, t0, t0.Add(time.Hour))}}},
			ctr:    pinnedCtr("team-a", app, app+"@"+dA),
			wantOK: true, wantStatus: statusDrifted, wantRecord: "q-app", wantSince: "2026-12-01T11:00:00Z"},
		{name: "a container pinned to its record's digest is current",
			records: []record{digestRec}, ctr: pinnedCtr("team-a", app, app+"@"+dB),
			wantOK: true, wantStatus: statusCurrent, wantRecord: "q-app"},
		{name: "an image written without a tag finds the record of latest",
			records: []record{digestRec}, ctr: pinnedCtr("team-a", reg+"/team/app", app+"@"+dA),
			wantOK: true, wantStatus: statusDrifted, wantRecord: "q-app"},
		{name: "a container left as written is unpinned",
			records: []record{digestRec}, ctr: pinnedCtr("team-a", app, app),
			wantOK: true, wantStatus: statusUnpinned},
		{name: "a container written with a digest is the user's pin and not reported",
			records: []record{digestRec}, ctr: pinnedCtr("team-a", app+"@"+dA, app+"@"+dA)},
		{name: "an original-images entry naming another repository is stale and not reported",
			records: []record{digestRec}, ctr: pinnedCtr("team-a", reg+"/team/other:1", app+"@"+dA)},
		{name: "a pinned container whose repository has no record has no record",
			records: []record{digestRec}, ctr: pinnedCtr("team-a", reg+"/team/db:1", reg+"/team/db:1@"+dA),
			wantOK: true, wantStatus: statusNoRecord, wantReason: "no record in image-pin-system"},
		{name: "a digest record of another tag does not fit",
			records: []record{digestRec}, ctr: pinnedCtr("team-a", reg+"/team/app:2", reg+"/team/app:2@"+dA),
			wantOK: true, wantStatus: statusNoRecord},
		{name: "without a config another namespace's record fits when it gave the pinned digest",
			records: []record{digestRec}, ctr: pinnedCtr("team-b", app, app+"@"+dA),
			wantOK: true, wantStatus: statusDrifted, wantRecord: "q-app"},
		{name: "without a config another namespace's record that never gave the pinned digest does not fit",
			records: []record{digestRec}, ctr: pinnedCtr("team-b", app, app+"@"+dC),
			wantOK: true, wantStatus: statusNoRecord},
		{name: "without a config the record the namespace created wins over another namespace's",
			records: []record{digestRec, {name: "q-own", ns: "team-b", entry: "catch-all", repo: "team/app", tag: "latest", status: dA, resolved: t0}},
			ctr:     pinnedCtr("team-b", app, app+"@"+dA),
			wantOK:  true, wantStatus: statusCurrent, wantRecord: "q-own"},
		{name: "without a config records of two entries that gave another namespace's digest are ambiguous",
			records: []record{digestRec, {name: "q-other", ns: "team-c", entry: "mirror", repo: "team/app", tag: "latest", status: dA, resolved: t0}},
			ctr:     pinnedCtr("team-b", app, app+"@"+dA),
			wantOK:  true, wantStatus: statusAmbiguous, wantReason: "records of 2 registry entries (catch-all, mirror)"},
		{name: "without a config the constraint an annotation sets must be the record's",
			records: []record{
				{name: "q-14", ns: "team-a", entry: "catch-all", repo: "acme/api", strategy: "semver", constraint: "~1.4", statusTag: "1.4.8", status: dB, resolved: t0},
				{name: "q-15", ns: "team-a", entry: "catch-all", repo: "acme/api", strategy: "semver", constraint: "~1.5", statusTag: "1.5.2", status: dC, resolved: t0.Add(time.Hour)}},
			ctr:    steered(pinnedCtr("team-a", reg+"/acme/api:1.4", reg+"/acme/api:1.4.7@"+dA), map[string]string{"image-pin.io/constraint": "~1.4"}),
			wantOK: true, wantStatus: statusDrifted, wantRecord: "q-14"},
		{name: "a malformed annotation leaves a pinned container without a record and says why",
			records: []record{digestRec},
			ctr:     steered(pinnedCtr("team-a", app, app+"@"+dA), map[string]string{"image-pin.io/constraint": "not a constraint"}),
			wantOK:  true, wantStatus: statusNoRecord, wantReason: "annotation image-pin.io/constraint"},
		{name: "Docker Hub's official image finds its library record",
			records: []record{{name: "q-nginx", ns: "team-a", entry: "hub", repo: "library/nginx", tag: "1.27", status: dB, resolved: t0}},
			ctr:     pinnedCtr("team-a", "nginx:1.27", "nginx:1.27@"+dA),
			wantOK:  true, wantStatus: statusDrifted, wantRecord: "q-nginx"},
		{name: "Docker Hub's official image pinned from its library record drifted",
			records: []record{{name: "q-nginx", ns: "team-a", entry: "hub", repo: "library/nginx", tag: "1.27", status: dB, resolved: t0,
				history: []v1alpha1.HistoryEntry{moved("1.27", dA, t0.Add(-time.Hour), t0)}}},
			ctr:    pinnedCtr("team-b", "docker.io/library/nginx:1.27", "docker.io/library/nginx:1.27@"+dA),
			wantOK: true, wantStatus: statusDrifted, wantRecord: "q-nginx"},
		{name: "without a config a one-segment path finds the record an entry's defaultns put under a namespace",
			records: []record{{name: "q-dns", ns: "team-a", entry: "harbor", repo: "team-a/app", tag: "1", status: dB, resolved: t0}},
			ctr:     pinnedCtr("team-a", "harbor.example/app:1", "harbor.example/app:1@"+dA),
			wantOK:  true, wantStatus: statusDrifted, wantRecord: "q-dns"},
		{name: "with the config a record of an entry that does not admit the namespace is never shown",
			cfg: true,
			records: []record{{name: "q-tenant", ns: "tenant-a-1", entry: "tenant a", repo: "tenant/app", tag: "1", status: dB, resolved: t0,
				history: []v1alpha1.HistoryEntry{moved("1", dA, t0.Add(-time.Hour), t0)}}},
			ctr:    pinnedCtr("tenant-b-1", reg+"/tenant/app:1", reg+"/tenant/app:1@"+dA),
			wantOK: true, wantStatus: statusNoRecord},
		{name: "without the config the same record is shown, as drift assumes a record that gave the pin serves its namespace",
			records: []record{{name: "q-tenant", ns: "tenant-a-1", entry: "tenant a", repo: "tenant/app", tag: "1", status: dB, resolved: t0,
				history: []v1alpha1.HistoryEntry{moved("1", dA, t0.Add(-time.Hour), t0)}}},
			ctr:    pinnedCtr("tenant-b-1", reg+"/tenant/app:1", reg+"/tenant/app:1@"+dA),
			wantOK: true, wantStatus: statusDrifted, wantRecord: "q-tenant"},
		{name: "with the config the entry that admits the namespace finds its record",
			cfg: true,
			records: []record{{name: "q-tenant", ns: "tenant-a-1", entry: "tenant a", repo: "tenant/app", tag: "1", status: dB, resolved: t0,
				history: []v1alpha1.HistoryEntry{moved("1", dA, t0.Add(-time.Hour), t0)}}},
			ctr:    pinnedCtr("tenant-a-2", reg+"/tenant/app:1", reg+"/tenant/app:1@"+dA),
			wantOK: true, wantStatus: statusDrifted, wantRecord: "q-tenant"},
		{name: "with the config the policy.images rule's constraint picks the semver record",
			cfg: true,
			records: []record{
				{name: "q-14", ns: "team-b", entry: "catch-all", repo: "acme/api", strategy: "semver", constraint: "~1.4", statusTag: "1.4.8", status: dB, resolved: t0},
				{name: "q-15", ns: "team-a", entry: "catch-all", repo: "acme/api", strategy: "semver", constraint: "~1.5", statusTag: "1.5.2", status: dC, resolved: t0.Add(time.Hour)}},
			ctr:    pinnedCtr("team-a", reg+"/acme/api:1.4", reg+"/acme/api:1.4.7@"+dA),
			wantOK: true, wantStatus: statusDrifted, wantRecord: "q-14"},
		{name: "with the config a container the config now leaves alone has no record and says why",
			cfg:     true,
			records: []record{digestRec},
			ctr:     pinnedCtr("team-a", "quay.io/team/app:latest", "quay.io/team/app:latest@"+dA),
			wantOK:  true, wantStatus: statusNoRecord, wantReason: "the config leaves it alone now"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg *config.Config
			if tt.cfg {
				cfg = loadDriftConfig(t)
			}
			var objs []v1alpha1.ImageResolution
			for _, r := range tt.records {
				objs = append(objs, r.object())
			}
			it, ok := newMatcher(cfg, "image-pin-system", objs).judge(tt.ctr)
			if ok != tt.wantOK {
				t.Fatalf("reported %v (%+v), want %v", ok, it, tt.wantOK)
			}
			if !ok {
				return
			}
			if it.Status != tt.wantStatus || it.Record != tt.wantRecord || (tt.wantSince != "" && it.Since != tt.wantSince) || !strings.Contains(it.Reason, tt.wantReason) {
				t.Errorf("got status %q, record %q, since %q, reason %q; want %q, %q, %q, a reason with %q",
					it.Status, it.Record, it.Since, it.Reason, tt.wantStatus, tt.wantRecord, tt.wantSince, tt.wantReason)
			}
		})
	}
}

// With the config, two records of one entry may fit (an entry whose
// api_url changed keeps its older records until retention): the one whose
// queryHash is the query's wins, even when the other gave the pin and is
// newer.
func TestDriftWithTheConfigPrefersTheRecordOfTheQuerysHash(t *testing.T) {
	cfg := loadDriftConfig(t)
	img, err := imageref.ParseImage(reg + "/team/app:latest")
	if err != nil {
		t.Fatal(err)
	}
	q, ok, err := cfg.Query(img, "team-a", config.Steering{}, false)
	if !ok || err != nil {
		t.Fatalf("query: %v %v", ok, err)
	}
	recs := []v1alpha1.ImageResolution{
		record{name: "q-old", ns: "team-a", entry: "catch-all", repo: "team/app", tag: "latest", status: dA, resolved: t0.Add(time.Hour), hash: "elsewhere"}.object(),
		record{name: "q-hash", ns: "team-a", entry: "catch-all", repo: "team/app", tag: "latest", status: dB, resolved: t0, hash: q.Hash()}.object(),
	}
	app := reg + "/team/app:latest"
	it, _ := newMatcher(cfg, "image-pin-system", recs).judge(pinnedCtr("team-a", app, app+"@"+dA))
	if it.Record != "q-hash" || it.Status != statusDrifted {
		t.Errorf("got record %q (%s), want q-hash drifted", it.Record, it.Status)
	}
}

func TestDriftReadsTheContainersTheWebhookRecorded(t *testing.T) {
	orig := func(m map[string]string) map[string]string {
		b, _ := json.Marshal(m)
		return map[string]string{pinhook.OriginalImagesKey: string(b)}
	}
	spec := &corev1.PodSpec{
		InitContainers:      []corev1.Container{{Name: "init", Image: "r.example/i:1@" + dA}},
		Containers:          []corev1.Container{{Name: "app", Image: "r.example/a:1@" + dA}, {Name: "side", Image: "r.example/s:1"}},
		EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "r.example/d:1@" + dA}}},
	}
	all := orig(map[string]string{"init": "r.example/i:1", "app": "r.example/a:1", "debug": "r.example/d:1"})
	yes := true
	tests := []struct {
		name string
		kind string
		meta metav1.ObjectMeta
		want []string // container/type
	}{
		{name: "every recorded container is read with its type, in the pod spec's order",
			kind: kindPod, meta: metav1.ObjectMeta{Annotations: all},
			want: []string{"init/initContainer", "app/container", "debug/ephemeralContainer"}},
		{name: "a container the annotation does not record is not read",
			kind: kindDeployment, meta: metav1.ObjectMeta{Annotations: orig(map[string]string{"app": "r.example/a:1"})},
			want: []string{"app/container"}},
		{name: "an object the webhook never admitted gives nothing",
			kind: kindDeployment, meta: metav1.ObjectMeta{}},
		{name: "a malformed original-images annotation gives nothing, as the webhook ignores it",
			kind: kindDeployment, meta: metav1.ObjectMeta{Annotations: map[string]string{pinhook.OriginalImagesKey: "{"}}},
		{name: "an object labelled skip gives nothing",
			kind: kindDeployment, meta: metav1.ObjectMeta{Annotations: all, Labels: map[string]string{pinhook.SkipLabel: "true"}}},
		{name: "a Pod with a controller gives nothing: its owner's template holds the pin",
			kind: kindPod, meta: metav1.ObjectMeta{Annotations: all, OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-1", Controller: &yes}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, c := range workloadContainers(tt.kind, &tt.meta, spec) {
				got = append(got, c.Container+"/"+c.Type)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func driftSample() *driftReport {
	return &driftReport{Kind: driftReportKind, Version: driftReportVersion, StateNamespace: "image-pin-system", Namespaces: []string{"team-a"},
		Items: []driftItem{
			{Namespace: "team-a", Kind: kindDeployment, Name: "web", Container: "app", ContainerType: typeContainer, Status: statusDrifted,
				Image: "reg.example/team/app:latest", Strategy: "digest", Pinned: &driftPin{Tag: "latest", Digest: dA},
				Current: &driftPin{Tag: "latest", Digest: dB, ResolvedAt: "2026-12-01T11:00:00Z", ConfirmedAt: "2026-12-01T11:00:00Z"},
				Since:   "2026-12-01T11:00:00Z", Record: "q-app"},
			{Namespace: "team-a", Kind: kindCronJob, Name: "report", Container: "setup", ContainerType: typeInit, Status: statusDrifted,
				Image: "reg.example/acme/api:1.4", Strategy: "semver", Constraint: "~1.4", Pinned: &driftPin{Tag: "1.4.7", Digest: dA},
				Current: &driftPin{Tag: "1.4.8", Digest: dC, ResolvedAt: "2026-12-01T10:00:00Z", ConfirmedAt: "2026-12-01T10:00:00Z"},
				Since:   "2026-12-01T10:00:00Z", Record: "q-api"},
		},
		Summary: driftSummary{Drifted: 2, Current: 5}}
}

func TestDriftPrintsATableOfDriftedContainers(t *testing.T) {
	now := t0.Add(3 * time.Hour)
	tests := []struct {
		name      string
		wide, all bool
		want      string
	}{
		{name: "text shows short digests and the drift's age as kubectl prints ages",
			want: `NAMESPACE  WORKLOAD        CONTAINER     IMAGE                                   PINNED                      CURRENT                     SINCE
team-a     Deployment/web  app           reg.example/team/app:latest             latest@sha256:aaaaaaaaaaaa  latest@sha256:bbbbbbbbbbbb  120m
team-a     CronJob/report  setup (init)  reg.example/acme/api:1.4 (semver ~1.4)  1.4.7@sha256:aaaaaaaaaaaa   1.4.8@sha256:cccccccccccc   3h
`},
		{name: "all adds the status",
			all: true,
			want: `NAMESPACE  WORKLOAD        CONTAINER     IMAGE                                   PINNED                      CURRENT                     SINCE  STATUS
team-a     Deployment/web  app           reg.example/team/app:latest             latest@sha256:aaaaaaaaaaaa  latest@sha256:bbbbbbbbbbbb  120m   drifted
team-a     CronJob/report  setup (init)  reg.example/acme/api:1.4 (semver ~1.4)  1.4.7@sha256:aaaaaaaaaaaa   1.4.8@sha256:cccccccccccc   3h     drifted
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			driftSample().writeText(&b, tt.wide, tt.all, now)
			if b.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tt.want)
			}
		})
	}
	t.Run("wide shows full digests, the time and the record", func(t *testing.T) {
		var b bytes.Buffer
		driftSample().writeText(&b, true, false, now)
		line := strings.Split(b.String(), "\n")[1]
		for _, want := range []string{"latest@" + dA, "latest@" + dB, "2026-12-01T11:00:00Z", "q-app"} {
			if !strings.Contains(line, want) {
				t.Errorf("wide line %q lacks %q", line, want)
			}
		}
	})
	t.Run("an empty report prints nothing", func(t *testing.T) {
		var b bytes.Buffer
		(&driftReport{}).writeText(&b, false, false, now)
		if b.Len() != 0 {
			t.Errorf("printed %q", b.String())
		}
	})
}

func TestDriftJSONKeepsItsDocumentedSchema(t *testing.T) {
	t.Run("an empty report has an empty items list and zero counts", func(t *testing.T) {
		var b bytes.Buffer
		r := &driftReport{Kind: driftReportKind, Version: driftReportVersion, StateNamespace: "image-pin-system"}
		if err := r.writeJSON(&b); err != nil {
			t.Fatal(err)
		}
		want := `{
  "kind": "DriftReport",
  "version": 1,
  "stateNamespace": "image-pin-system",
  "namespaces": [],
  "items": [],
  "summary": {
    "drifted": 0,
    "current": 0,
    "noRecord": 0,
    "ambiguous": 0,
    "unpinned": 0
  }
}
`
		if b.String() != want {
			t.Errorf("got\n%s\nwant\n%s", b.String(), want)
		}
	})
	t.Run("an item carries both digests, since when and the record", func(t *testing.T) {
		var b bytes.Buffer
		if err := driftSample().writeJSON(&b); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Items []map[string]any
		}
		if err := json.Unmarshal(b.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		item, _ := json.Marshal(got.Items[0])
		want := `{"container":"app","containerType":"container","current":{"confirmedAt":"2026-12-01T11:00:00Z","digest":"` + dB +
			`","resolvedAt":"2026-12-01T11:00:00Z","tag":"latest"},"image":"reg.example/team/app:latest","kind":"Deployment","name":"web","namespace":"team-a","pinned":{"digest":"` + dA +
			`","tag":"latest"},"record":"q-app","since":"2026-12-01T11:00:00Z","status":"drifted","strategy":"digest"}`
		if string(item) != want {
			t.Errorf("got  %s\nwant %s", item, want)
		}
	})
}

func TestDriftRefusesFlagsItCannotHonour(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "both -A and a namespace", args: []string{"-A", "-n", "team-a"}, want: "-A and --namespace"},
		{name: "an output drift does not have", args: []string{"-o", "yaml"}, want: `-o "yaml"`},
		{name: "a positional argument", args: []string{"team-a"}, want: `unexpected argument "team-a"`},
		{name: "a timeout that is not positive", args: []string{"--timeout", "0s"}, want: "--timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Run(t.Context(), append([]string{"drift"}, tt.args...), &out, &errOut)
			if code != ExitUsage || !strings.Contains(errOut.String(), tt.want) || out.Len() != 0 {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d and %q", code, out.String(), errOut.String(), ExitUsage, tt.want)
			}
		})
	}
}

// An imagepullsecrets entry answers each namespace with its own pull
// secrets: with the config, another namespace's record of the same image
// is never shown, even when it is the only one that fits (found by an
// attacker review: the query built here has no pull secrets, so no hash
// matches and the namespace filter was dropped).
func TestDriftWithThePullSecretsEntryShowsOnlyTheNamespacesOwnRecords(t *testing.T) {
	cfg, err := config.Parse([]byte(`registries:
- name: private
  api_url: http://reg.example:5000
  prefix: reg.example:5000
  credentials: imagepullsecrets
`))
	if err != nil {
		t.Fatal(err)
	}
	app := reg + "/team/app:1"
	recs := []v1alpha1.ImageResolution{
		record{name: "q-b", ns: "team-b", entry: "private", repo: "team/app", tag: "1", status: dB, resolved: t0,
			history: []v1alpha1.HistoryEntry{moved("1", dA, t0.Add(-time.Hour), t0)}}.object(),
	}
	m := newMatcher(cfg, "image-pin-system", recs)
	if it, _ := m.judge(pinnedCtr("team-a", app, app+"@"+dA)); it.Record != "" || it.Status != statusNoRecord {
		t.Errorf("team-a was shown team-b's record: record %q status %s", it.Record, it.Status)
	}
	if it, _ := m.judge(pinnedCtr("team-b", app, app+"@"+dA)); it.Record != "q-b" || it.Status != statusDrifted {
		t.Errorf("team-b's own record: got record %q status %s, want q-b drifted", it.Record, it.Status)
	}
}
