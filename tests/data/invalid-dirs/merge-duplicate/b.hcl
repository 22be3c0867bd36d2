# The standby region moved to its own file, but a.hcl still declares it.

region "eu-west-1" {
  cloud    = "aws"
  role     = "standby"
  endpoint = "euw1.acme.example.com"

  compute "nodes" {
    instance_type = "m6i.xlarge"
    image         = "ami-0fedcba9876543210"
    count         = { active = 3, standby = 1, cold = 0 }
  }

  kubernetes {
    context   = "acme-euw1"
    namespace = "acme"
  }
}
