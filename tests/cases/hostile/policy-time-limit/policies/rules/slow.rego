# METADATA
# title: Slow
# custom:
#   id: policy.slow
#   severity: error
package kitchen.rules.slow

import rego.v1

violation contains {"msg": "x"} if {
	some i in numbers.range(1, 100000000000)
	i < 0
}
