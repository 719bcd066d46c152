package kitchen.rules.slow_test

import rego.v1

test_never_ends if {
	count([i | some i in numbers.range(1, 100000000000)]) > 0
}
