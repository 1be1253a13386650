package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	sigsjson "sigs.k8s.io/json"
)

// Validator checks one rendered object against the built-in API types or its CRD.
type Validator struct {
	scheme  *runtime.Scheme
	decoder *kjson.Serializer
	crds    map[string]*CRD
}

// NewValidator registers the built-in group versions a current cluster serves (only GA versions
// of the kinds a deployment uses; a removed beta such as policy/v1beta1 is not known, so it fails).
func NewValidator(crds map[string]*CRD) *Validator {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, networkingv1.AddToScheme,
		rbacv1.AddToScheme, batchv1.AddToScheme, autoscalingv2.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	decoder := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
		kjson.SerializerOptions{Yaml: false, Pretty: false, Strict: true})
	return &Validator{scheme: scheme, decoder: decoder, crds: crds}
}

// Validate returns the problems of one object (none when it is valid).
func (v *Validator) Validate(obj Object) []Problem {
	gv, err := schema.ParseGroupVersion(obj.APIVersion)
	if err != nil {
		return []Problem{problem(obj, "apiVersion", err.Error())}
	}
	gvk := gv.WithKind(obj.Kind)
	if crd, ok := v.crds[gv.Group+"/"+obj.Kind]; ok {
		return v.validateCustom(obj, crd, gv.Version)
	}
	if v.scheme.Recognizes(gvk) {
		return v.validateBuiltIn(obj)
	}
	return []Problem{problem(obj, "apiVersion",
		fmt.Sprintf("no schema for %s kind %s: neither a built-in type nor a CRD in the CRD folder", obj.APIVersion, obj.Kind))}
}

// validateBuiltIn decodes strictly: an unknown or duplicated field, or a value of the wrong type, is an error.
func (v *Validator) validateBuiltIn(obj Object) []Problem {
	_, _, err := v.decoder.Decode(obj.JSON, nil, nil)
	if err == nil {
		return nil
	}
	if strictErr, ok := runtime.AsStrictDecodingError(err); ok {
		out := []Problem{}
		for _, e := range strictErr.Errors() {
			out = append(out, problem(obj, fieldOfStrictError(e.Error()), e.Error()))
		}
		return out
	}
	return []Problem{problem(obj, fieldOfTypeError(err.Error()), err.Error())}
}

func (v *Validator) validateCustom(obj Object, crd *CRD, version string) []Problem {
	cv, ok := crd.Versions[version]
	if !ok || !cv.Served {
		return []Problem{problem(obj, "apiVersion", fmt.Sprintf("%s/%s is not served by the CRD (%s serves %s)",
			crd.Group, version, crd.File, strings.Join(crd.ServedVersions(), ", ")))}
	}
	out := []Problem{}
	// metadata: decoded strictly into ObjectMeta, as the API server does for every resource.
	if raw, ok := obj.Map["metadata"]; ok {
		data, _ := json.Marshal(raw)
		var meta metav1.ObjectMeta
		strictErrs, err := sigsjson.UnmarshalStrict(data, &meta)
		if err != nil {
			out = append(out, problem(obj, "metadata", err.Error()))
		}
		for _, e := range strictErrs {
			out = append(out, problem(obj, "metadata."+fieldOfStrictError(e.Error()), e.Error()))
		}
	}
	// Unknown fields: what the API server would prune, except under x-kubernetes-preserve-unknown-fields.
	var pruned map[string]interface{}
	if err := utiljson.Unmarshal(obj.JSON, &pruned); err != nil {
		return append(out, problem(obj, "(object)", err.Error()))
	}
	unknown := pruning.PruneWithOptions(pruned, cv.Structural, true,
		structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	sort.Strings(unknown)
	for _, path := range unknown {
		out = append(out, problem(obj, path, "unknown field (not in the CRD's openAPIV3Schema)"))
	}
	// Types, enums, required fields, bounds, patterns: the CRD's schema, then its CEL rules.
	// Decoded as the API server does: integral numbers become int64, as CEL and the schema expect.
	var object map[string]interface{}
	if err := utiljson.Unmarshal(obj.JSON, &object); err != nil {
		return append(out, problem(obj, "(object)", err.Error()))
	}
	for _, e := range validation.ValidateCustomResource(nil, object, cv.Schema) {
		out = append(out, problem(obj, e.Field, e.ErrorBody()))
	}
	if cv.CEL != nil {
		errs, _ := cv.CEL.Validate(context.Background(), nil, cv.Structural, object, nil, celconfig.RuntimeCELCostBudget)
		for _, e := range errs {
			out = append(out, problem(obj, fieldOrRoot(e), e.ErrorBody()))
		}
	}
	return out
}

func fieldOrRoot(e *field.Error) string {
	if e.Field == "" || e.Field == "<nil>" {
		return "(root)"
	}
	return e.Field
}

func problem(obj Object, fieldPath, message string) Problem {
	return Problem{Kind: obj.Kind, Name: obj.Name, Namespace: obj.Namespace, Field: fieldPath, Message: message}
}

// `unknown field "spec.template.spec.containers[0].imagePullPolicyy"` -> the quoted path.
func fieldOfStrictError(msg string) string {
	if i := strings.Index(msg, `"`); i >= 0 {
		if j := strings.Index(msg[i+1:], `"`); j >= 0 {
			return msg[i+1 : i+1+j]
		}
	}
	return "(object)"
}

// `json: cannot unmarshal string into Go struct field Container.spec.template.spec.containers.ports of type int32`.
func fieldOfTypeError(msg string) string {
	const marker = "Go struct field "
	if i := strings.Index(msg, marker); i >= 0 {
		rest := msg[i+len(marker):]
		if j := strings.Index(rest, " of type"); j >= 0 {
			rest = rest[:j]
		}
		if k := strings.Index(rest, "."); k >= 0 {
			return rest[k+1:]
		}
		return rest
	}
	return "(object)"
}
