// Package deployments holds formq's deployment artifacts rather than
// code: the container build (Dockerfile), the Compose file, the
// Kubernetes kustomize base and example overlay (k8s/), and the local
// demo (local/). Its tests check them without a cluster, a Docker engine
// or a network: every manifest decodes strictly into the Kubernetes API
// types, cross references hold (labels, ports, probes, Secrets, KEDA
// triggers), and every FORMQ_* name is one the processes read.
package deployments
