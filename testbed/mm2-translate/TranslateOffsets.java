// Prints what MM2's own RemoteClusterUtils.translateOffsets answers for a consumer
// group from the checkpoints on a cluster, one "topic partition offset" line per
// partition, sorted. Usage (Kafka's jars on the classpath):
//   java -cp "$(testbed/testbed classpath 4.3.1)" TranslateOffsets.java \
//     <target bootstrap> <source alias> <group>
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.connect.mirror.RemoteClusterUtils;

public class TranslateOffsets {
    public static void main(String[] args) throws Exception {
        Map<String, Object> properties = new HashMap<>();
        properties.put("bootstrap.servers", args[0]);
        Map<TopicPartition, OffsetAndMetadata> offsets =
                RemoteClusterUtils.translateOffsets(properties, args[1], args[2], Duration.ofSeconds(30));
        Map<String, Long> sorted = new TreeMap<>();
        offsets.forEach((partition, offset) ->
                sorted.put(partition.topic() + " " + partition.partition(), offset.offset()));
        sorted.forEach((partition, offset) -> System.out.println(partition + " " + offset));
    }
}
