# The services, one Kubernetes Deployment each, in priority order. Replicas per role:
# the active region runs the full count, the warm standby enough to take traffic while
# it scales up, the cold region nothing.

component "gateway" {
  priority = 1
  replicas = { active = 6, standby = 2, cold = 0 }
}

component "auth" {
  priority = 1
  replicas = { active = 4, standby = 2, cold = 0 }
}

component "checkout" {
  priority = 1
  replicas = { active = 4, standby = 2, cold = 0 }
}

component "payments" {
  priority = 1
  replicas = { active = 4, standby = 2, cold = 0 }
}

component "orders" {
  priority = 2
  replicas = { active = 4, standby = 1, cold = 0 }
}

component "cart" {
  priority = 2
  replicas = { active = 3, standby = 1, cold = 0 }
}

component "catalog" {
  priority = 2
  replicas = { active = 3, standby = 1, cold = 0 }
}

component "search" {
  priority = 3
  replicas = { active = 3, standby = 1, cold = 0 }
}

component "notifications" {
  priority = 4
  replicas = { active = 2 } # standby and cold default to 0
}

component "recommendations" {
  priority = 5
  replicas = { active = 2, standby = 0 }
}
