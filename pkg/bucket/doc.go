// Package bucket is intake's S3-compatible object storage: it builds tusd's
// S3 store on an aws-sdk-go-v2 client, and uses minio-go for what tusd does
// not do — checking (and optionally creating) the bucket, serving downloads
// with Range support, and presigning short-lived download URLs. Both clients
// take credentials from the standard AWS chain (AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY, shared profiles, SSO, instance and task roles).
//
// It must never put a secret key, a session token or a presigned URL's
// signature into an error or a log line.
package bucket
