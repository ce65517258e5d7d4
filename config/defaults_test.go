package config

import (
	"k8s.io/apimachinery/pkg/util/validation/field"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/resolver"
)

func TestPolicyDefaultsFillOnlyWhatIsUnsetAndValidateChangesNothing(t *testing.T) {
	zero, five := 0, 5
	tests := []struct {
		name string
		in   policyConf
		want policyConf
	}{
		{"an empty block gets every default", policyConf{}, policyConf{
			Mode: "pin", OnError: "ignore", CacheTTL: &duration{DefaultCacheTTL}, ResolveTimeout: duration{DefaultResolveTimeout},
			MaxCandidateTags: ptr(resolver.DefaultMaxCandidates), MaxLookups: ptr(DefaultMaxLookups),
			RefreshWindow: &duration{DefaultRefreshWindow}, RecordRetention: &duration{DefaultRecordRetention}, MaxRecordsPerNS: ptr(DefaultMaxRecordsPerNamespace),
			MaxRecords: ptr(DefaultMaxRecords),
		}},
		{"cache_ttl: 0 stays 0, the cache turned off", policyConf{CacheTTL: &duration{0}}, policyConf{
			Mode: "pin", OnError: "ignore", CacheTTL: &duration{0}, ResolveTimeout: duration{DefaultResolveTimeout},
			MaxCandidateTags: ptr(resolver.DefaultMaxCandidates), MaxLookups: ptr(DefaultMaxLookups),
			RefreshWindow: &duration{DefaultRefreshWindow}, RecordRetention: &duration{DefaultRecordRetention}, MaxRecordsPerNS: ptr(DefaultMaxRecordsPerNamespace),
			MaxRecords: ptr(DefaultMaxRecords),
		}},
		{"what is written is kept", policyConf{Mode: "report", OnError: "fail", CacheTTL: &duration{time.Minute}, ResolveTimeout: duration{time.Second}, MaxCandidateTags: &five, MaxLookups: &five}, policyConf{
			Mode: "report", OnError: "fail", CacheTTL: &duration{time.Minute}, ResolveTimeout: duration{time.Second}, MaxCandidateTags: &five, MaxLookups: &five,
			RefreshWindow: &duration{DefaultRefreshWindow}, RecordRetention: &duration{DefaultRecordRetention}, MaxRecordsPerNS: ptr(DefaultMaxRecordsPerNamespace),
			MaxRecords: ptr(DefaultMaxRecords),
		}},
		{"max_lookups: 0 is kept for Validate to refuse", policyConf{MaxLookups: &zero}, policyConf{
			Mode: "pin", OnError: "ignore", CacheTTL: &duration{DefaultCacheTTL}, ResolveTimeout: duration{DefaultResolveTimeout},
			MaxCandidateTags: ptr(resolver.DefaultMaxCandidates), MaxLookups: &zero,
			RefreshWindow: &duration{DefaultRefreshWindow}, RecordRetention: &duration{DefaultRecordRetention}, MaxRecordsPerNS: ptr(DefaultMaxRecordsPerNamespace),
			MaxRecords: ptr(DefaultMaxRecords),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in
			got.Default()
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("defaulted to %+v, want %+v", got, tc.want)
			}
			before := got
			_ = got.Validate(field.NewPath("policy"))
			if !reflect.DeepEqual(got, before) {
				t.Errorf("Validate changed the policy")
			}
		})
	}
}

func TestPolicyValidateNamesTheFieldItRefuses(t *testing.T) {
	zero := 0
	for _, tc := range []struct {
		in    policyConf
		field string
	}{
		{policyConf{Mode: "pinn"}, "mode"},
		{policyConf{OnError: "warn"}, "on_error"},
		{policyConf{MaxCandidateTags: &zero}, "max_candidate_tags"},
		{policyConf{MaxLookups: &zero}, "max_lookups"},
		{policyConf{RefreshWindow: &duration{-time.Minute}}, "refresh_window"},
		{policyConf{RecordRetention: &duration{0}}, "record_retention"},
		{policyConf{MaxRecordsPerNS: ptr(-1)}, "max_records_per_namespace"},
		{policyConf{MaxRecords: ptr(-1)}, "max_records"},
	} {
		pc := tc.in
		pc.Default()
		errs := pc.Validate(field.NewPath("policy"))
		if len(errs) != 1 || errs[0].Field != "policy."+tc.field {
			t.Errorf("%+v: errors %v, want one on policy.%s", tc.in, errs, tc.field)
		}
		if msg := (&InvalidError{Errs: errs}).Error(); !strings.HasPrefix(msg, "policy: "+tc.field+": ") {
			t.Errorf("%+v: message %q, want one naming policy: %s", tc.in, msg, tc.field)
		}
	}
}

func ptr(n int) *int { return &n }

func TestRecordFieldsAreReadFromThePolicyBlock(t *testing.T) {
	spec, err := Decode([]byte("registries: []\npolicy:\n  refresh_window: 0\n  record_retention: 24h\n  max_records_per_namespace: 7\n  max_records: 70\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := spec.Policy
	if p.RefreshWindow != 0 || p.RecordRetention != 24*time.Hour || p.MaxRecordsPerNamespace != 7 || p.MaxRecords != 70 {
		t.Errorf("got refresh_window %s, record_retention %s, max_records_per_namespace %d, max_records %d; want 0, 24h, 7, 70",
			p.RefreshWindow, p.RecordRetention, p.MaxRecordsPerNamespace, p.MaxRecords)
	}
}
