"""Prepares a moto server whose first INITIAL_NO_AUTH_ACTION_COUNT actions are unauthenticated:
an IAM user allowed everything with an access key, and a role allowed everything that a web identity
may assume. Prints one JSON line: {"accessKeyId", "secretAccessKey", "roleArn"}."""
import json
import sys
import boto3

endpoint = sys.argv[1]
iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
allow_all = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
policy = iam.create_policy(PolicyName="allow-all", PolicyDocument=json.dumps(allow_all))["Policy"]["Arn"]
iam.create_user(UserName="backup-manager")
iam.attach_user_policy(UserName="backup-manager", PolicyArn=policy)
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.example"},
                                                  "Action": "sts:AssumeRoleWithWebIdentity"}]}
role = iam.create_role(RoleName="backup-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
iam.attach_role_policy(RoleName="backup-role", PolicyArn=policy)
key = iam.create_access_key(UserName="backup-manager")["AccessKey"]
print(json.dumps({"accessKeyId": key["AccessKeyId"], "secretAccessKey": key["SecretAccessKey"], "roleArn": role}))
