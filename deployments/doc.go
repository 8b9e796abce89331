// Package deployments holds formq's deployment artifacts rather than
// code: the container build (Dockerfile), the Compose file, the
// Kubernetes kustomize base and example overlay (k8s/), and the local
// demo (local/). Its tests check them without a cluster, a Docker engine
// or a network: every manifest decodes strictly into the Kubernetes API
// types, cross references hold (labels, ports, probes, Secrets, KEDA
// triggers), and every FORMQ_* name is one the processes read.
//
// It is a module of its own (github.com/formq/formq/deployments, with a
// replace to the repository) so that k8s.io/api and compose-go, which only
// these checks need, stay out of formq's go.mod: run them with
// `cd deployments && go test ./...` (make test and make lint do).
package deployments
