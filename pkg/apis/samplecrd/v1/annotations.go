package v1

// AllowedCIDRsAnnotation is the annotation of a Namespace that bounds the cidr of its Networks: a
// comma-separated list of CIDRs, such as "10.20.0.0/16,fd00:20::/48", spaces around each entry
// allowed. The ValidatingAdmissionPolicy in config/policy refuses to create a Network in an
// annotated namespace, or to change its cidr, unless the cidr lies inside one of the listed
// ranges; a malformed list refuses them all. Namespaces without it are not bounded. Only cluster
// administrators should be able to set it: whoever can change a namespace's annotations can
// change its bounds.
const AllowedCIDRsAnnotation = GroupName + "/allowed-cidrs"

// AllowedCIDRsAnnotationMaxLength is the longest value of AllowedCIDRsAnnotation, in characters,
// that the policy reads; it refuses every Network of a namespace whose value is longer, which
// bounds the policy's cost at admission.
const AllowedCIDRsAnnotationMaxLength = 4096
