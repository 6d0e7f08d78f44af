output "endpoint_name" {
  description = "Name of the SageMaker endpoint (what InvokeEndpoint takes); null while endpoint_enabled is false."
  value       = try(aws_sagemaker_endpoint.this[0].name, null)
}

output "endpoint_arn" {
  description = "ARN of the SageMaker endpoint, for sagemaker:InvokeEndpoint permissions; null while endpoint_enabled is false."
  value       = try(aws_sagemaker_endpoint.this[0].arn, null)
}

output "endpoint_config_name" {
  description = "Name of the endpoint configuration currently deployed; null while endpoint_enabled is false."
  value       = try(aws_sagemaker_endpoint_configuration.this[0].name, null)
}

output "model_name" {
  description = "Name of the SageMaker model (changes whenever the image or container environment does); null while endpoint_enabled is false."
  value       = try(aws_sagemaker_model.this[0].name, null)
}

output "serving_engine" {
  description = "Serving container of the endpoint: tgi or vllm."
  value       = var.serving_engine
}

output "variant_name" {
  description = "Name of the endpoint's production variant."
  value       = local.variant_name
}

output "role_arn" {
  description = "ARN of the SageMaker execution role."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the SageMaker execution role."
  value       = aws_iam_role.this.name
}

output "image_uri" {
  description = "Container image the model runs (the region's DLC of serving_engine unless image_uri was given)."
  value       = local.image_uri
}

output "num_gpus" {
  description = "GPUs per instance given to the engine (TGI: SM_NUM_GPUS; vLLM: SM_VLLM_TENSOR_PARALLEL_SIZE); 0 means none is set (CPU)."
  value       = local.num_gpus
}

output "container_environment" {
  description = "Environment of the serving container, without the Hugging Face token."
  value       = local.public_environment
}

output "log_group_name" {
  description = "CloudWatch log group of the endpoint's containers."
  value       = aws_cloudwatch_log_group.this.name
}

output "autoscaling_policy_arn" {
  description = "ARN of the target-tracking scaling policy; null when autoscaling is off."
  value       = try(aws_appautoscaling_policy.this[0].arn, null)
}

output "alarm_arns" {
  description = "ARNs of the endpoint's CloudWatch alarms by kind (invocation-5xx, model-latency, utilization); empty when alarms_enabled or endpoint_enabled is false."
  value       = { for kind, alarm in aws_cloudwatch_metric_alarm.this : kind => alarm.arn }
}
