# METADATA
# title: x
package kitchen.rules.latin

# café
