package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

// CRDVersion is what one version of a CRD checks.
type CRDVersion struct {
	Name       string
	Served     bool
	Structural *structuralschema.Structural
	Schema     validation.SchemaValidator
	// CEL holds the x-kubernetes-validations rules; nil when the schema has none.
	CEL *cel.Validator
}

// CRD is one custom resource definition, by group and kind.
type CRD struct {
	File     string
	Group    string
	Kind     string
	Versions map[string]*CRDVersion
}

// ServedVersions lists the versions the CRD serves, sorted.
func (c *CRD) ServedVersions() []string {
	out := []string{}
	for name, v := range c.Versions {
		if v.Served {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// LoadCRDs reads every *.yaml / *.yml file of dir that holds a CustomResourceDefinition (apiextensions.k8s.io/v1).
func LoadCRDs(dir string) (map[string]*CRD, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	crds := map[string]*CRD{}
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			continue
		}
		file := filepath.Join(dir, e.Name())
		crd, err := loadCRD(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		crds[crd.Group+"/"+crd.Kind] = crd
	}
	if len(crds) == 0 {
		return nil, fmt.Errorf("%s: no CustomResourceDefinition found", dir)
	}
	return crds, nil
}

func loadCRD(file string) (*CRD, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var v1 apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &v1); err != nil {
		return nil, err
	}
	if v1.Kind != "CustomResourceDefinition" || v1.APIVersion != "apiextensions.k8s.io/v1" {
		return nil, fmt.Errorf("not an apiextensions.k8s.io/v1 CustomResourceDefinition (%s %s)", v1.APIVersion, v1.Kind)
	}
	var internal apiextensions.CustomResourceDefinition
	if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(&v1, &internal, nil); err != nil {
		return nil, err
	}
	crd := &CRD{File: file, Group: internal.Spec.Group, Kind: internal.Spec.Names.Kind, Versions: map[string]*CRDVersion{}}
	for _, version := range internal.Spec.Versions {
		props := internal.Spec.Validation
		if version.Schema != nil {
			props = version.Schema
		}
		if props == nil || props.OpenAPIV3Schema == nil {
			return nil, fmt.Errorf("version %s has no openAPIV3Schema", version.Name)
		}
		structural, err := structuralschema.NewStructural(props.OpenAPIV3Schema)
		if err != nil {
			return nil, fmt.Errorf("version %s: %w", version.Name, err)
		}
		if errs := structuralschema.ValidateStructural(field.NewPath("openAPIV3Schema"), structural); len(errs) > 0 {
			return nil, fmt.Errorf("version %s: schema is not structural: %v", version.Name, errs.ToAggregate())
		}
		schemaValidator, _, err := validation.NewSchemaValidator(props.OpenAPIV3Schema)
		if err != nil {
			return nil, fmt.Errorf("version %s: %w", version.Name, err)
		}
		crd.Versions[version.Name] = &CRDVersion{
			Name:       version.Name,
			Served:     version.Served,
			Structural: structural,
			Schema:     schemaValidator,
			CEL:        cel.NewValidator(structural, true, celconfig.PerCallLimit),
		}
	}
	return crd, nil
}
