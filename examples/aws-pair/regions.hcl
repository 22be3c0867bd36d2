# The two regions. Promoting us-west-2 is a matter of swapping the two roles
# (drplan failover --to us-west-2 does it for you).

region "us-east-1" {
  cloud    = "aws"
  role     = "active"
  endpoint = "use1.ledger.example.com"

  compute "app" {
    instance_type = "m6i.xlarge"
    image         = "ami-0a1b2c3d4e5f60718"
    count         = { active = 4, standby = 2, cold = 0 }
  }

  kubernetes {
    context   = "ledger-use1"
    namespace = "ledger"
  }
}

region "us-west-2" {
  cloud    = "aws"
  role     = "standby" # warm: half the capacity, DNS SECONDARY
  endpoint = "usw2.ledger.example.com"

  compute "app" {
    instance_type = "m6i.xlarge"
    image         = "ami-0f9e8d7c6b5a49382"
    count         = { active = 4, standby = 2, cold = 0 }
  }

  kubernetes {
    context   = "ledger-usw2"
    namespace = "ledger"
  }
}
