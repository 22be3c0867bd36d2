# expect: invalid_value, hook_without_cluster, secret_in_env, unsupported_hook_point
# A point that does not exist, a region without a cluster, a secret written into `env`,
# and incidents, which drplan does not declare.

drplan {
  project = "acme"
}

provider "aws" {}

region "us-east-1" {
  cloud = "aws"
  role  = "active"

  kubernetes {
    context   = "acme-use1"
    namespace = "acme"
  }
}

region "us-west-2" {
  cloud = "aws"
  role  = "standby"

  compute "nodes" {
    instance_type = "t3.large"
    image         = "ami-0123456789abcdef0"
    count         = { active = 1, standby = 1 }
  }
}

hook "preflight" {
  at    = "before_failovr"
  image = "acme/dr-scripts:1"
}

hook "verify" {
  at     = "after_traffic"
  region = "us-west-2"
  image  = "acme/dr-scripts:1"
}

hook "notify" {
  at    = "after_fence"
  image = "acme/dr-scripts:1"
  env   = { SLACK_TOKEN = "xoxb-not-here", CHANNEL = "#dr" }
}

hook "isolate" {
  at    = "on_incident"
  image = "acme/dr-scripts:1"
}
