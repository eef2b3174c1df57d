package main

import "github.com/anteroom/anteroom/internal/testredis"

// clusterServer is a local Redis Cluster for figure 5.
type clusterServer interface {
	Addrs() []string
	Close()
}

// startCluster forms a 3-master Redis Cluster from redis-server processes
// on free ports (redis-cli --cluster create), as the test suite does.
func startCluster() (clusterServer, error) { return testredis.NewCluster() }
