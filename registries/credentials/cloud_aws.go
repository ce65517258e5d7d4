package credentials

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
)

// ecrHost is a private ECR registry: ACCOUNT.dkr.ecr.REGION.amazonaws.com,
// with its FIPS, China and dual-stack (dkr-ecr.REGION.on.aws) spellings.
var ecrHost = regexp.MustCompile(`^([0-9]{12})\.dkr[.-]ecr(?:-fips)?\.([a-z0-9-]+)\.(?:amazonaws\.com(?:\.cn)?|on\.aws)$`)

// awsLogin is the aws: kind: the AWS SDK's default credential chain (EKS Pod
// Identity, IRSA's web-identity token file, environment, shared files,
// instance role), then ECR GetAuthorizationToken. The SDK rather than
// amazon-ecr-credential-helper: the helper wraps the same SDK calls but hides
// the token's expiry (which the cache and refresher need) behind its own file
// cache under $HOME, which a read-only root filesystem does not have.
type awsLogin struct {
	region string

	mu     sync.Mutex
	client *ecr.Client // made on first login; its config caches STS credentials
}

// newAWSLogin takes the region from an ECR host, unless region= names it:
// an entry whose api_url is a pull-through proxy or mirror must name it.
// The account needs no option: one ECR token opens every registry the role
// may pull from.
func newAWSLogin(opts map[string]string, host string) (cloudLogin, error) {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	l := &awsLogin{region: opts["region"]}
	if m := ecrHost.FindStringSubmatch(strings.ToLower(h)); m != nil && l.region == "" {
		l.region = m[2]
	}
	if l.region == "" {
		return nil, fmt.Errorf("aws: %s is not an ECR host (ACCOUNT.dkr.ecr.REGION.amazonaws.com): name the region, e.g. aws:region=eu-west-1", host)
	}
	return l, nil
}

func (l *awsLogin) ecr(ctx context.Context) (*ecr.Client, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.client != nil {
		return l.client, nil
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(l.region))
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	l.client = ecr.NewFromConfig(cfg)
	return l.client, nil
}

func (l *awsLogin) login(ctx context.Context, host string) (authn.AuthConfig, time.Time, error) {
	client, err := l.ecr(ctx)
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, err
	}
	out, err := client.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, fmt.Errorf("ECR GetAuthorizationToken in %s: %w", l.region, err)
	}
	if len(out.AuthorizationData) == 0 {
		return authn.AuthConfig{}, time.Time{}, fmt.Errorf("ECR GetAuthorizationToken in %s: no authorization data in the answer", l.region)
	}
	d := out.AuthorizationData[0]
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(d.AuthorizationToken))
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, fmt.Errorf("ECR GetAuthorizationToken in %s: the token is not base64", l.region)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok || user == "" || pass == "" {
		return authn.AuthConfig{}, time.Time{}, fmt.Errorf("ECR GetAuthorizationToken in %s: the token is not user:password", l.region)
	}
	if d.ExpiresAt == nil {
		return authn.AuthConfig{}, time.Time{}, fmt.Errorf("ECR GetAuthorizationToken in %s: the token has no expiry", l.region)
	}
	return authn.AuthConfig{Username: user, Password: pass}, *d.ExpiresAt, nil
}
