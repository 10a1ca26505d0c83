package network

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	apiextensions "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apiextensions-apiserver/pkg/registry/customresource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"

	"github.com/samplecrd/samplecrd-controller/internal/fuzzinput"
	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
)

// crdPath is the generated CRD, relative to this package.
const crdPath = "../../../config/crd/bases/samplecrd.k8s.io_networks.yaml"

// admission validates Network objects as the API server does on create: the CRD's OpenAPI schema
// (types, required fields, maxLength) and its x-kubernetes-validations rules, through the
// apiextensions-apiserver strategy the API server serves custom resources with, and the CEL
// validator alone with the server's cost limits, for the rules that the strategy skips once the
// schema refused the object.
type admission struct {
	// validate is the strategy's Validate: what a create request gets.
	validate func(ctx context.Context, obj *unstructured.Unstructured) field.ErrorList
	// structural is the version's structural schema, and rules the CEL validator built from it.
	structural *structuralschema.Structural
	rules      *cel.Validator
}

var (
	admissionOnce sync.Once
	admissionVal  *admission
	admissionErr  error
)

// loadAdmission builds the admission of the CRD in crdPath once per process; the CRD itself must
// pass the API server's validation of CRDs, which includes the cost estimate of every rule.
func loadAdmission(t testing.TB) *admission {
	t.Helper()
	admissionOnce.Do(func() { admissionVal, admissionErr = newAdmission(crdPath) })
	if admissionErr != nil {
		t.Fatal(admissionErr)
	}
	return admissionVal
}

func newAdmission(path string) (*admission, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &crd); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(&crd)
	var internal apiextensions.CustomResourceDefinition
	if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(&crd, &internal, nil); err != nil {
		return nil, fmt.Errorf("converting the CRD: %w", err)
	}
	if errs := crdvalidation.ValidateCustomResourceDefinition(context.Background(), &internal); len(errs) > 0 {
		return nil, fmt.Errorf("the API server would refuse the CRD in %s: %w", path, errs.ToAggregate())
	}
	// As the API server's handler does: the version's schema, converted to the internal types.
	if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Schema == nil {
		return nil, fmt.Errorf("the CRD in %s has %d versions, want one with a schema", path, len(crd.Spec.Versions))
	}
	var validation apiextensions.CustomResourceValidation
	if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(crd.Spec.Versions[0].Schema, &validation, nil); err != nil {
		return nil, fmt.Errorf("converting the CRD's schema: %w", err)
	}
	props := validation.OpenAPIV3Schema
	structural, err := structuralschema.NewStructural(props)
	if err != nil {
		return nil, fmt.Errorf("the CRD's schema is not structural: %w", err)
	}
	schemaValidator, _, err := apiservervalidation.NewSchemaValidator(props)
	if err != nil {
		return nil, fmt.Errorf("building the schema validator: %w", err)
	}
	statusProps := props.Properties["status"]
	statusValidator, _, err := apiservervalidation.NewSchemaValidator(&statusProps)
	if err != nil {
		return nil, fmt.Errorf("building the status schema validator: %w", err)
	}
	gvk := samplecrdv1.SchemeGroupVersion.WithKind("Network")
	strategy := customresource.NewStrategy(nil, true, gvk, schemaValidator, statusValidator, structural,
		&apiextensions.CustomResourceSubresourceStatus{}, nil, nil)
	rules := cel.NewValidator(structural, true, celconfig.PerCallLimit)
	if rules == nil {
		return nil, fmt.Errorf("the CRD in %s has no x-kubernetes-validations rules", path)
	}
	return &admission{
		validate: func(ctx context.Context, obj *unstructured.Unstructured) field.ErrorList {
			return strategy.Validate(ctx, obj)
		},
		structural: structural,
		rules:      rules,
	}, nil
}

// networkObject is the object a client creates for the spec, as the API server decodes it.
func networkObject(t testing.TB, cidr, gateway string) *unstructured.Unstructured {
	t.Helper()
	n := &samplecrdv1.Network{
		TypeMeta:   metav1.TypeMeta{APIVersion: samplecrdv1.SchemeGroupVersion.String(), Kind: "Network"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "n"},
		Spec:       samplecrdv1.NetworkSpec{Cidr: cidr, Gateway: gateway},
	}
	data, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	return obj
}

// admit returns the API server's errors for a create of a Network with the spec.
func (a *admission) admit(t testing.TB, cidr, gateway string) field.ErrorList {
	t.Helper()
	return a.validate(context.Background(), networkObject(t, cidr, gateway))
}

// celErrors returns the errors of the x-kubernetes-validations rules alone, with the cost budget of
// a request, whatever the schema says.
func (a *admission) celErrors(t testing.TB, cidr, gateway string) field.ErrorList {
	t.Helper()
	errs, _ := a.rules.Validate(context.Background(), nil, a.structural, networkObject(t, cidr, gateway).Object, nil, celconfig.RuntimeCELCostBudget)
	return errs
}

// onlyTooLong reports whether errs are the schema's maxLength errors, and the note that the rules
// were not run because of them.
func onlyTooLong(errs field.ErrorList) bool {
	tooLong := false
	for _, err := range errs {
		switch {
		case err.Type == field.ErrorTypeTooLong:
			tooLong = true
		case err.Type == field.ErrorTypeInvalid && strings.HasPrefix(err.Detail, "some validation rules were not checked"):
		default:
			return false
		}
	}
	return tooLong
}

// checkAgreement fails t unless the API server admits the spec exactly when desiredNetwork accepts
// it. The one difference allowed is written down in docs/api.md ("Where admission and the
// controller differ").
func checkAgreement(t *testing.T, a *admission, cidr, gateway string) {
	t.Helper()
	// A client sends JSON: invalid UTF-8 becomes U+FFFD before either side sees it.
	var spec samplecrdv1.NetworkSpec
	data, _ := json.Marshal(samplecrdv1.NetworkSpec{Cidr: cidr, Gateway: gateway})
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	cidr, gateway = spec.Cidr, spec.Gateway

	errs := a.admit(t, cidr, gateway)
	_, invalid := desiredNetwork(network("n", cidr, gateway))
	admitted, valid := len(errs) == 0, invalid == nil
	if admitted == valid {
		return
	}
	if valid && onlyTooLong(errs) {
		// The schema bounds the strings' lengths so that the rules' cost can be estimated. Every
		// spelling of a valid spec fits, so this is a spelling of a valid spec that does not.
		if celErrs := a.celErrors(t, cidr, gateway); len(celErrs) > 0 {
			t.Errorf("cidr %q gateway %q: the controller accepts it, the API server refuses it for its length, and its rules refuse it too: %v",
				cidr, gateway, celErrs.ToAggregate())
		}
		t.Errorf("cidr %q (%d bytes) gateway %q (%d bytes): the controller accepts it; the API server refuses it only for its length: %v",
			cidr, len(cidr), gateway, len(gateway), errs.ToAggregate())
		return
	}
	if admitted {
		t.Errorf("cidr %q gateway %q: the API server admits it, the controller refuses it: %v", cidr, gateway, invalid)
	} else {
		t.Errorf("cidr %q gateway %q: the controller accepts it, the API server refuses it: %v", cidr, gateway, errs.ToAggregate())
	}
}

// FuzzSpecValidation checks that admission (the CRD's schema and rules, evaluated by the API
// server's own libraries) and the controller's validation (desiredNetwork) agree on every spec:
// admitted exactly when valid. With generated set, cidr and gateway are not used as they are but
// as random bytes from which genSpec builds a spec that is likely valid, or invalid by one small
// step, so that the fuzzer spends its time at the boundary. The seeds are in
// testdata/fuzz/FuzzSpecValidation.
func FuzzSpecValidation(f *testing.F) {
	a := loadAdmission(f)
	f.Fuzz(func(t *testing.T, generated bool, cidr, gateway string) {
		if generated {
			cidr, gateway = genSpec([]byte(cidr), []byte(gateway))
		}
		checkAgreement(t, a, cidr, gateway)
	})
}

// interestingBases are addresses near which the rules and the Go validation decide: the reserved
// ranges and their neighbours, and ordinary private ranges.
var interestingBases = func() []netip.Addr {
	var out []netip.Addr
	for _, r := range samplecrdv1.ReservedRanges() {
		out = append(out, r.Prefix.Addr())
	}
	for _, s := range []string{"10.0.0.0", "192.168.0.0", "1.0.0.0", "126.255.255.0", "128.0.0.0", "169.253.255.0",
		"223.255.255.0", "240.0.0.0", "255.255.255.252", "fd00::", "2001:db8::", "::2", "::fffe:0:0", "::1:0:0:0",
		"fe7f:ffff::", "fec0::", "feff::"} {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}()

// genSpec builds a spec from random bytes: an address of either family (random, or near an
// interesting base), a prefix length, mostly masked, and a gateway at some offset from the network
// address, each written in one of the spellings the parsers accept or nearly accept.
func genSpec(cidrBytes, gatewayBytes []byte) (string, string) {
	r := fuzzinput.New(cidrBytes)
	flags := r.Byte()
	v6 := flags&1 != 0
	size := 4
	if v6 {
		size = 16
	}
	raw := r.Bytes(size)
	var addr netip.Addr
	if flags&2 != 0 {
		// Near an interesting base: the raw bytes become a small offset.
		base := interestingBases[int(raw[0])%len(interestingBases)]
		addr = addOffset(base, int64(int8(raw[1]))<<(raw[2]%24))
	} else if v6 {
		addr = netip.AddrFrom16([16]byte(raw))
	} else {
		addr = netip.AddrFrom4([4]byte(raw))
	}
	bits := int(r.Byte()) % (addr.BitLen() + 2) // one past the end, at times
	if flags&4 != 0 {
		// Mostly the lengths where the size rules decide.
		bits = addr.BitLen() - int(r.Byte()%5)
	}
	prefix, err := addr.Prefix(min(bits, addr.BitLen()))
	if err != nil {
		prefix = netip.PrefixFrom(addr, 0)
	}
	if flags&8 == 0 {
		prefix = prefix.Masked()
	}

	g := fuzzinput.New(gatewayBytes)
	gflags := g.Byte()
	var gw netip.Addr
	network := prefix.Masked().Addr()
	switch gflags % 8 {
	case 0, 1, 2:
		gw = addOffset(network, int64(gflags/8)+int64(g.Byte())<<(8*(gflags%3)))
	case 3:
		gw = lastAddr(prefix.Masked()) // IPv4 broadcast
	case 4:
		gw = addOffset(lastAddr(prefix.Masked()), -int64(g.Byte()))
	case 5:
		gw = network
	case 6:
		gw = addOffset(network, int64(int16(binary.BigEndian.Uint16(g.Bytes(2)))))
	case 7:
		// The other family.
		if addr.Is4() {
			gw = netip.AddrFrom16([16]byte(append([]byte{0xfd}, g.Bytes(15)...)))
		} else {
			gw = netip.AddrFrom4([4]byte(g.Bytes(4)))
		}
	}
	cidr := spellAddr(prefix.Addr(), flags>>4) + "/" + strconv.Itoa(prefix.Bits())
	if flags&0x80 != 0 && r.Byte()%4 == 0 {
		cidr = spellAddr(prefix.Addr(), flags>>4) + "/0" + strconv.Itoa(prefix.Bits()) // leading zero in the length
	}
	gateway := spellAddr(gw, g.Byte())
	if g.Byte()%16 == 1 {
		gateway += "%eth0"
	}
	return cidr, gateway
}

// addOffset adds a signed offset to an address, wrapping within its family.
func addOffset(a netip.Addr, off int64) netip.Addr {
	b := a.AsSlice()
	carry := off
	for i := len(b) - 1; i >= 0 && carry != 0; i-- {
		sum := int64(b[i]) + carry
		b[i] = byte(sum)
		carry = sum >> 8 // arithmetic shift: borrows propagate as -1
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}

// spellAddr writes an address in one of several spellings chosen by style: canonical, expanded
// with leading zeros, upper case, with an IPv4 tail, as an IPv4-mapped IPv6 address, or with a
// leading zero in an IPv4 octet.
func spellAddr(a netip.Addr, style byte) string {
	switch style % 8 {
	case 1:
		if a.Is6() {
			return a.StringExpanded()
		}
	case 2:
		return strings.ToUpper(a.String())
	case 3:
		if a.Is6() {
			b := a.As16()
			return netip.AddrFrom16(b).StringExpanded()[:30] + netip.AddrFrom4([4]byte(b[12:])).String()
		}
	case 4:
		if a.Is4() {
			return "::ffff:" + a.String()
		}
	case 5:
		if a.Is4() {
			return "0" + a.String()
		}
	}
	return a.String()
}
