// Conformance check for Airlock's EKS tokens (lambdas/adapters/eks-token.ts).
//
// Reads one token from stdin and runs it through the reference verifier, the
// token package of aws-iam-authenticator (the code the EKS control plane runs
// to authenticate `k8s-aws-v1.` bearer tokens). The verifier ends by sending
// the presigned GetCallerIdentity request to STS over HTTPS; here that request
// reaches a local stand-in for STS instead, which does what STS does with it:
// it recomputes the SigV4 query signature (with aws-sdk-go-v2's signer and the
// fixed test credentials given as flags) and answers with the caller identity
// of an assumed-role session.
//
// Routing: the verifier's http.Client has no Transport of its own, so it uses
// http.DefaultTransport, which this program replaces with one that dials the
// stand-in for the expected STS host only. The URL, the Host header and TLS
// server-name verification are left as they are: the stand-in serves a
// certificate for the real STS host name, issued by a CA that only this
// process trusts.
//
// Output: one JSON line on stdout; exit status 0 only when the verifier
// accepted the token and the stand-in's own checks passed.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"sigs.k8s.io/aws-iam-authenticator/pkg/token"
)

// emptyPayloadSHA256 is the SHA-256 of an empty body: a GET carries none.
const emptyPayloadSHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// STS rejects presigned requests older than this (and the verifier does too).
const presignedValidity = 15 * time.Minute

// How far in the future X-Amz-Date may lie (clock skew STS tolerates).
const maxClockSkew = 5 * time.Minute

type config struct {
	cluster      string
	region       string
	partition    string
	accessKey    string
	secretKey    string
	sessionToken string
	roleArn      string
	sessionName  string
	userID       string
}

type identityOut struct {
	ARN          string `json:"arn"`
	CanonicalARN string `json:"canonicalArn"`
	SessionName  string `json:"sessionName"`
	AccountID    string `json:"accountId"`
	UserID       string `json:"userId"`
	AccessKeyID  string `json:"accessKeyId"`
	STSEndpoint  string `json:"stsEndpoint"`
}

type standInReport struct {
	Requests      int      `json:"requests"`
	Host          string   `json:"host,omitempty"`
	SignedHeaders string   `json:"signedHeaders,omitempty"`
	ClusterHeader string   `json:"clusterHeader,omitempty"`
	SignatureOK   bool     `json:"signatureOk"`
	Failures      []string `json:"failures,omitempty"`
}

type result struct {
	OK       bool          `json:"ok"`
	Version  string        `json:"verifier"`
	Identity *identityOut  `json:"identity,omitempty"`
	Error    string        `json:"error,omitempty"`
	StandIn  standInReport `json:"standIn"`
}

// verifierVersion names the aws-iam-authenticator release this binary was built with (go.mod pins it).
func verifierVersion() string {
	const module = "sigs.k8s.io/aws-iam-authenticator"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == module {
				return module + " " + dep.Version
			}
		}
	}
	return module + " (unknown version)"
}

func main() {
	cfg := config{}
	flag.StringVar(&cfg.cluster, "cluster", "", "EKS cluster name the verifier is bound to (x-k8s-aws-id)")
	flag.StringVar(&cfg.region, "region", "", "AWS region of the cluster and of the STS endpoint")
	flag.StringVar(&cfg.partition, "partition", "", "AWS partition (default: derived from -region)")
	flag.StringVar(&cfg.accessKey, "access-key", "", "access key id of the fixed test credentials")
	flag.StringVar(&cfg.secretKey, "secret-key", "", "secret access key of the fixed test credentials")
	flag.StringVar(&cfg.sessionToken, "session-token", "", "session token of the fixed test credentials")
	flag.StringVar(&cfg.roleArn, "role-arn", "arn:aws:iam::111122223333:role/airlock-eks", "role whose session the test credentials belong to")
	flag.StringVar(&cfg.sessionName, "session-name", "", "role session name of the test credentials (the agent's)")
	flag.StringVar(&cfg.userID, "role-id", "AROAEXAMPLEROLEID0001", "unique id of the role (the part of UserId before the colon)")
	flag.Parse()

	res := run(cfg)
	line, _ := json.Marshal(res)
	fmt.Println(string(line))
	if !res.OK {
		os.Exit(1)
	}
}

func run(cfg config) (res result) {
	res.Version = verifierVersion()
	fail := func(format string, args ...any) result {
		res.OK = false
		res.Error = fmt.Sprintf(format, args...)
		return res
	}
	if cfg.cluster == "" || cfg.region == "" || cfg.accessKey == "" || cfg.secretKey == "" || cfg.sessionName == "" {
		return fail("flags -cluster, -region, -access-key, -secret-key and -session-name are required")
	}
	if cfg.partition == "" {
		cfg.partition = partitionFor(cfg.region)
	}
	assumedArn, err := assumedRoleArn(cfg.roleArn, cfg.sessionName)
	if err != nil {
		return fail("%v", err)
	}

	raw, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
	if err != nil {
		return fail("reading token from stdin: %v", err)
	}
	tok := strings.TrimSpace(string(raw))

	host := "sts." + cfg.region + "." + dnsSuffixFor(cfg.partition)
	stand := &standIn{cfg: cfg, host: host, assumedArn: assumedArn}
	server, roots, err := stand.start()
	if err != nil {
		return fail("starting the STS stand-in: %v", err)
	}
	defer server.Close()

	http.DefaultTransport = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != host+":443" {
				return nil, fmt.Errorf("conformance check: refusing to dial %s (only %s is served, by the stand-in)", addr, host)
			}
			var d net.Dialer
			return d.DialContext(ctx, "tcp", server.Listener.Addr().String())
		},
		TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: false,
	}

	verifier := token.NewVerifier(cfg.cluster, cfg.partition, cfg.region)
	id, verr := verifier.Verify(tok)
	res.StandIn = stand.snapshot()
	if verr != nil {
		return fail("%v", verr)
	}
	if res.StandIn.Requests != 1 {
		return fail("the verifier accepted the token after %d STS requests (expected exactly 1)", res.StandIn.Requests)
	}
	if len(res.StandIn.Failures) > 0 || !res.StandIn.SignatureOK {
		return fail("stand-in checks failed: %s", strings.Join(res.StandIn.Failures, "; "))
	}
	res.OK = true
	res.Identity = &identityOut{
		ARN:          id.ARN,
		CanonicalARN: id.CanonicalARN,
		SessionName:  id.SessionName,
		AccountID:    id.AccountID,
		UserID:       id.UserID,
		AccessKeyID:  id.AccessKeyID,
		STSEndpoint:  id.STSEndpoint,
	}
	return res
}

func partitionFor(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	default:
		return "aws"
	}
}

func dnsSuffixFor(partition string) string {
	if partition == "aws-cn" {
		return "amazonaws.com.cn"
	}
	return "amazonaws.com"
}

// assumedRoleArn turns arn:P:iam::A:role/[path/]NAME into the ARN STS reports
// for a session of that role: arn:P:sts::A:assumed-role/NAME/SESSION.
func assumedRoleArn(roleArn, session string) (string, error) {
	parts := strings.SplitN(roleArn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") {
		return "", fmt.Errorf("-role-arn %q is not an IAM role ARN", roleArn)
	}
	resource := strings.Split(parts[5], "/")
	name := resource[len(resource)-1]
	return fmt.Sprintf("arn:%s:sts::%s:assumed-role/%s/%s", parts[1], parts[4], name, session), nil
}

// ---------------------------------------------------------------- STS stand-in

type standIn struct {
	cfg        config
	host       string
	assumedArn string

	mu     sync.Mutex
	report standInReport
}

func (s *standIn) snapshot() standInReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.report
	r.Failures = slices.Clone(r.Failures)
	return r
}

func (s *standIn) start() (*httptest.Server, *x509.CertPool, error) {
	cert, roots, err := selfSignedFor(s.host)
	if err != nil {
		return nil, nil, err
	}
	server := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	server.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	server.StartTLS()
	return server, roots, nil
}

func (s *standIn) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.report.Requests++
	s.mu.Unlock()

	problems := s.check(r)
	if len(problems) > 0 {
		s.mu.Lock()
		s.report.Failures = append(s.report.Failures, problems...)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		body, _ := json.Marshal(map[string]any{
			"Error":     map[string]string{"Code": "SignatureDoesNotMatch", "Message": strings.Join(problems, "; "), "Type": "Sender"},
			"RequestId": "00000000-0000-4000-8000-000000000000",
		})
		_, _ = w.Write(body)
		return
	}

	body, _ := json.Marshal(map[string]any{
		"GetCallerIdentityResponse": map[string]any{
			"GetCallerIdentityResult": map[string]string{
				"Account": accountOf(s.cfg.roleArn),
				"Arn":     s.assumedArn,
				"UserId":  s.cfg.userID + ":" + s.cfg.sessionName,
			},
			"ResponseMetadata": map[string]string{"RequestId": "00000000-0000-4000-8000-000000000001"},
		},
	})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func accountOf(roleArn string) string {
	parts := strings.SplitN(roleArn, ":", 6)
	if len(parts) < 5 {
		return ""
	}
	return parts[4]
}

// check does what STS does with a presigned GetCallerIdentity request, for the
// one set of credentials it knows. It returns what is wrong, if anything.
func (s *standIn) check(r *http.Request) (problems []string) {
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if r.Method != http.MethodGet {
		add("method %s, expected GET", r.Method)
	}
	if r.URL.Path != "/" {
		add("path %q, expected /", r.URL.Path)
	}
	if r.TLS == nil || r.TLS.ServerName != s.host {
		add("TLS server name is not %s", s.host)
	}
	if r.Host != s.host {
		add("Host header %q, expected %q", r.Host, s.host)
	}
	s.mu.Lock()
	s.report.Host = r.Host
	s.mu.Unlock()

	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		add("malformed query: %v", err)
		return problems
	}
	get := func(name string) string {
		values := query[name]
		if len(values) != 1 {
			add("query parameter %s appears %d times, expected once", name, len(values))
			return ""
		}
		return values[0]
	}
	if v := get("Action"); v != "GetCallerIdentity" {
		add("Action=%q", v)
	}
	if v := get("Version"); v != "2011-06-15" {
		add("Version=%q", v)
	}
	if v := get("X-Amz-Algorithm"); v != "AWS4-HMAC-SHA256" {
		add("X-Amz-Algorithm=%q", v)
	}
	if s.cfg.sessionToken != "" {
		if v := get("X-Amz-Security-Token"); v != s.cfg.sessionToken {
			add("X-Amz-Security-Token does not match the test credentials")
		}
	}
	amzDate := get("X-Amz-Date")
	signingTime, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		add("X-Amz-Date %q: %v", amzDate, err)
		return problems
	}
	now := time.Now()
	if now.After(signingTime.Add(presignedValidity)) {
		add("request expired: signed at %s", signingTime.Format(time.RFC3339))
	}
	if signingTime.After(now.Add(maxClockSkew)) {
		add("request signed in the future: %s", signingTime.Format(time.RFC3339))
	}
	wantCredential := fmt.Sprintf("%s/%s/%s/sts/aws4_request", s.cfg.accessKey, signingTime.Format("20060102"), s.cfg.region)
	if v := get("X-Amz-Credential"); v != wantCredential {
		add("X-Amz-Credential=%q, expected %q", v, wantCredential)
	}
	signedHeaders := get("X-Amz-SignedHeaders")
	s.mu.Lock()
	s.report.SignedHeaders = signedHeaders
	s.report.ClusterHeader = r.Header.Get("x-k8s-aws-id")
	s.mu.Unlock()
	headerNames := strings.Split(signedHeaders, ";")
	if !slices.Contains(headerNames, "host") || !slices.Contains(headerNames, "x-k8s-aws-id") {
		add("SignedHeaders %q must include host and x-k8s-aws-id", signedHeaders)
	}
	if got := r.Header.Values("x-k8s-aws-id"); len(got) != 1 || got[0] != s.cfg.cluster {
		add("x-k8s-aws-id header %q, expected %q", got, s.cfg.cluster)
	}
	signature := get("X-Amz-Signature")
	if len(problems) > 0 {
		return problems
	}

	// Recompute the signature the way STS would: the same request, with the
	// headers the client said it signed, signed with the known credentials.
	unsigned := url.Values{}
	for name, values := range query {
		switch name {
		case "X-Amz-Signature", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Security-Token":
			continue // the signer sets these itself
		}
		unsigned[name] = values
	}
	probe, err := http.NewRequest(http.MethodGet, "https://"+r.Host+"/?"+unsigned.Encode(), nil)
	if err != nil {
		add("rebuilding the request: %v", err)
		return problems
	}
	for _, name := range headerNames {
		if name == "host" {
			continue
		}
		values := r.Header.Values(name)
		if len(values) == 0 {
			add("signed header %s is missing from the request", name)
			return problems
		}
		for _, v := range values {
			probe.Header.Add(name, v)
		}
	}
	creds := aws.Credentials{AccessKeyID: s.cfg.accessKey, SecretAccessKey: s.cfg.secretKey, SessionToken: s.cfg.sessionToken}
	signedURI, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, probe, emptyPayloadSHA256, "sts", s.cfg.region, signingTime)
	if err != nil {
		add("signing: %v", err)
		return problems
	}
	expected, err := url.Parse(signedURI)
	if err != nil {
		add("parsing the recomputed URL: %v", err)
		return problems
	}
	expectedQuery := expected.Query()
	if got := expectedQuery.Get("X-Amz-SignedHeaders"); got != signedHeaders {
		add("SignedHeaders %q, a correct signer would list %q", signedHeaders, got)
	}
	for name := range expectedQuery {
		if name != "X-Amz-Signature" && !slices.Equal(expectedQuery[name], query[name]) {
			add("query parameter %s differs from what a correct signer produces", name)
		}
	}
	for name := range query {
		if _, ok := expectedQuery[name]; !ok {
			add("query parameter %s is not part of the signed request", name)
		}
	}
	want := expectedQuery.Get("X-Amz-Signature")
	if subtle.ConstantTimeCompare([]byte(want), []byte(signature)) != 1 {
		add("X-Amz-Signature does not match the signature recomputed with the test credentials")
	} else if len(problems) == 0 {
		s.mu.Lock()
		s.report.SignatureOK = true
		s.mu.Unlock()
	}
	return problems
}

// selfSignedFor makes a throwaway CA-signed leaf for host: the certificate
// and a pool holding only that CA.
func selfSignedFor(host string) (tls.Certificate, *x509.CertPool, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "airlock conformance STS stand-in CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leafTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTemplate, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	return tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: leafKey}, roots, nil
}
