package deployments

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// The KEDA resources, as strict local structs of the fields of
// keda.sh/v1alpha1 that formq's manifests may use (KEDA's own Go module
// pulls in a controller runtime; these few fields are all the test
// needs). An unknown or misspelt field fails to decode.

// scaledObject is keda.sh/v1alpha1 ScaledObject.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              scaledObjectSpec `json:"spec"`
}

type scaledObjectSpec struct {
	ScaleTargetRef   scaleTarget   `json:"scaleTargetRef"`
	PollingInterval  *int32        `json:"pollingInterval,omitempty"`
	InitialCooldown  *int32        `json:"initialCooldownPeriod,omitempty"`
	CooldownPeriod   *int32        `json:"cooldownPeriod,omitempty"`
	IdleReplicaCount *int32        `json:"idleReplicaCount,omitempty"`
	MinReplicaCount  *int32        `json:"minReplicaCount,omitempty"`
	MaxReplicaCount  *int32        `json:"maxReplicaCount,omitempty"`
	Advanced         *kedaAdvanced `json:"advanced,omitempty"`
	Triggers         []kedaTrigger `json:"triggers"`
	Fallback         *struct {
		FailureThreshold int32 `json:"failureThreshold"`
		Replicas         int32 `json:"replicas"`
	} `json:"fallback,omitempty"`
}

type scaleTarget struct {
	APIVersion             string `json:"apiVersion,omitempty"`
	Kind                   string `json:"kind,omitempty"`
	Name                   string `json:"name"`
	EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
}

type kedaAdvanced struct {
	RestoreToOriginalReplicaCount bool `json:"restoreToOriginalReplicaCount,omitempty"`
	HPAConfig                     *struct {
		Name     string                                         `json:"name,omitempty"`
		Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
	} `json:"horizontalPodAutoscalerConfig,omitempty"`
}

type kedaTrigger struct {
	Type              string            `json:"type"`
	Name              string            `json:"name,omitempty"`
	UseCachedMetrics  bool              `json:"useCachedMetrics,omitempty"`
	MetricType        string            `json:"metricType,omitempty"`
	Metadata          map[string]string `json:"metadata"`
	AuthenticationRef *struct {
		Name string `json:"name"`
		Kind string `json:"kind,omitempty"`
	} `json:"authenticationRef,omitempty"`
}

// triggerAuthentication is keda.sh/v1alpha1 TriggerAuthentication.
type triggerAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretTargetRef []struct {
			Parameter string `json:"parameter"`
			Name      string `json:"name"`
			Key       string `json:"key"`
		} `json:"secretTargetRef,omitempty"`
	} `json:"spec"`
}

// redisTriggerKeys are the metadata keys of KEDA's redis (lists) scaler.
var redisTriggerKeys = map[string]bool{
	"address": true, "addressFromEnv": true, "host": true, "hostFromEnv": true, "port": true, "portFromEnv": true,
	"usernameFromEnv": true, "passwordFromEnv": true, "listName": true, "listLength": true,
	"activationListLength": true, "databaseIndex": true, "enableTLS": true, "unsafeSsl": true,
}

// redisAuthParams are the parameters a TriggerAuthentication may give the
// redis scaler.
var redisAuthParams = map[string]bool{
	"address": true, "host": true, "port": true, "username": true, "password": true,
	"tls": true, "ca": true, "cert": true, "key": true,
}
