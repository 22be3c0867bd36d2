# expect: database_without_cluster
# CloudNativePG lives in the region's cluster; this region has none.

drplan {
  project = "acme"
}

objectives {
  rpo = "1h"
}

provider "aws" {}
provider "gcp" {
  project = "acme-dr"
}

component "api" {
  replicas = { active = 2, standby = 1, cold = 0 }
}

region "us-east-1" {
  cloud = "aws"
  role  = "active"
  kubernetes {
    context = "use1"
  }
  database "ledger" {
    cloudnativepg = "ledger"
  }
}

region "us-west-2" {
  cloud = "aws"
  role  = "standby"
  database "ledger" {
    cloudnativepg = "ledger"
  }
}

region "europe" {
  cloud    = "gcp"
  role     = "cold"
  location = "europe-west1-b"
}

database "ledger" {
  engine  = "postgres"
  writers = ["api"]
}
