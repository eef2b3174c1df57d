package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// httpJoin is one new visitor through HTTP: authorize (a redirect to the
// waiting page) and the first visit of the waiting page, which joins the
// queue, as an app in JSON mode would make them.
func httpJoin(ctx context.Context, client *http.Client, a *instance) error {
	conf := &oauth2.Config{ClientID: pollClient, RedirectURL: rpCallback, Scopes: []string{gooidc.ScopeOpenID},
		Endpoint: oauth2.Endpoint{AuthURL: a.issuer + "/authorize"}}
	l := newLogin()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet,
		conf.AuthCodeURL(l.state, gooidc.Nonce(l.nonce), oauth2.S256ChallengeOption(l.verifier)), nil)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, a.issuer+"/wait/") {
		return fmt.Errorf("authorize: %s to %q", resp.Status, loc)
	}
	return get(ctx, client, loc+"?format=json", "")
}

// pollURLOn is v's status URL on instance a: a visitor's cookie and request
// are good on every instance of a deployment.
func pollURLOn(v waitingVisitor, a *instance) string {
	u, _ := url.Parse(v.pollURL)
	return a.issuer + u.RequestURI()
}

// throughput measures polls or joins spread evenly over instances.
func throughput(ctx context.Context, o options, client *http.Client, v waitingVisitor, kind string, instances []*instance) func() (measurement, error) {
	return func() (measurement, error) {
		r := load(ctx, o.concurrency, o.duration, func(ctx context.Context, w, _ int) error {
			a := instances[w%len(instances)]
			if kind == "joins" {
				return httpJoin(ctx, client, a)
			}
			return get(ctx, client, pollURLOn(v, a), v.cookie)
		})
		if r.ops == 0 {
			return measurement{}, fmt.Errorf("no successful %s: %v", kind, r.firstErr)
		}
		return measurement{value: r.rate(), lat: r.lat, errs: r.errs, err: r.firstErr}, nil
	}
}

// figureScaling is figure 5: polls and HTTP joins with the load spread over
// two instances sharing one redis-server, against one instance alone; and,
// when cluster is set, one instance on a Redis Cluster against one on a
// single redis-server.
func figureScaling(ctx context.Context, o options, single, second, cluster *instance) ([]figure, error) {
	client := newClient(o.concurrency)
	var out []figure
	compare := func(kind, name, baseName string, v waitingVisitor, base, value []*instance) error {
		step("figure 5: %s, %d clients, %d rounds of %s", name, o.concurrency, o.rounds, o.duration)
		bs, vs, err := paired(o.rounds, throughput(ctx, o, client, v, kind, base), throughput(ctx, o, client, v, kind, value))
		if err != nil {
			return err
		}
		id := strings.NewReplacer(" ", "_", ",", "").Replace(name)
		out = append(out, summary(figure{ID: id, Name: name, Unit: "/s", BaselineName: baseName}, bs, vs, 0, true))
		return nil
	}
	v, err := queueVisitor(client, single)
	if err != nil {
		return nil, err
	}
	both := []*instance{single, second}
	if err := compare("polls", "polls, 2 instances", "polls, 1 instance", v, both[:1], both); err != nil {
		return nil, err
	}
	if err := compare("joins", "HTTP joins, 2 instances", "HTTP joins, 1 instance", v, both[:1], both); err != nil {
		return nil, err
	}
	if cluster == nil {
		return out, nil
	}
	cv, err := queueVisitor(client, cluster)
	if err != nil {
		return nil, err
	}
	// The same visitor's cookie is not good on the other deployment (its
	// own Redis), so each side polls its own visitor.
	for _, kind := range []string{"polls", "joins"} {
		name := map[string]string{"polls": "polls, Redis Cluster", "joins": "HTTP joins, Redis Cluster"}[kind]
		step("figure 5: %s vs a single redis-server, %d clients, %d rounds of %s", name, o.concurrency, o.rounds, o.duration)
		bs, vs, err := paired(o.rounds, throughput(ctx, o, client, v, kind, both[:1]), throughput(ctx, o, client, cv, kind, []*instance{cluster}))
		if err != nil {
			return nil, err
		}
		id := strings.NewReplacer(" ", "_", ",", "").Replace(name)
		out = append(out, summary(figure{ID: id, Name: name + " (3 masters)", Unit: "/s",
			BaselineName: strings.Split(name, ",")[0] + ", single redis-server"}, bs, vs, 0, true))
	}
	return out, nil
}
